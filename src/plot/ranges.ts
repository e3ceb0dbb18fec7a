/** Histogram bin width of e0_hist.csv (eV), and of the histogram that finds an energy map's peak. */
export const E0_HIST_BIN_EV = 0.1;
/** Half-width of the colour range centred on the histogram peak of an edge-energy map (eV). */
export const E0_PEAK_HALF_RANGE_EV = 1.5;
