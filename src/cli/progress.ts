/**
 * Progress that tells the truth (cli-progress): bars count spectra (pixels) and show the
 * measured spectra/s and the time left; `xanes run` adds one bar over the fields of view
 * ("field 3/12") that keeps moving through every field. On a terminal only: in logs and
 * pipes the bars are silent and `xanes run` prints one line per field instead.
 */
import cliProgress from 'cli-progress';

const fmtInt = (v: number) => Math.round(v).toLocaleString('en-US');

function fmtTime(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '-';
  if (s < 60) return `${Math.ceil(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

const SPECTRA_FORMAT = '{label} [{bar}] {percentage}% | {done}/{all} {unit} | {rate} {unit}/s | {left} left';

/** Rate and time left of a count since its start (the first update). */
class Meter {
  private t0 = -1;
  update(done: number, total: number): { rate: string; left: string } {
    const now = performance.now();
    if (this.t0 < 0) this.t0 = now;
    const s = (now - this.t0) / 1000;
    const r = s > 0.05 && done > 0 ? done / s : NaN;
    return { rate: Number.isFinite(r) ? fmtInt(r) : '-', left: Number.isFinite(r) ? fmtTime((total - done) / r) : '-' };
  }
}

/**
 * A bar for one step on a terminal, counting `unit` (default spectra): the callback takes
 * (done, total) in that unit. Undefined when stderr is not a terminal.
 */
export function progress(label: string, unit = 'spectra'): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  const bar = new cliProgress.SingleBar({ format: SPECTRA_FORMAT, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
  const meter = new Meter();
  let started = false;
  return (done, total) => {
    const m = meter.update(done, total);
    const payload = { label, unit, done: fmtInt(done), all: fmtInt(total), ...m };
    if (!started) {
      bar.start(total, done, payload);
      started = true;
    } else bar.update(done, payload);
    if (done >= total) bar.stop();
  };
}

export interface FieldProgress {
  onField(index: number, total: number, name: string): void;
  onTile(done: number, total: number): void;
  stop(): void;
}

/**
 * `xanes run`: a bar over the fields ("field 3/12: name", spectra of all fields so far, the
 * rate and the time left for every field, assuming the rest are the size of this one) and a
 * bar over the spectra of the current field. Not a terminal: one line per field when it is
 * done ("field 3/12: name: 4,194,304 spectra in 31.2 s (134,431 spectra/s)").
 */
export function fieldProgress(): FieldProgress {
  if (!process.stderr.isTTY) {
    // Logs and pipes: one line per field when its spectra are done, with the measured rate.
    let line = '', t = 0;
    return {
      onField: (i, n, name) => { [line, t] = [`field ${i + 1}/${n}: ${name}`, performance.now()]; },
      onTile: (done, total) => {
        if (done < total || !line) return;
        const s = (performance.now() - t) / 1000;
        process.stderr.write(`${line}: ${fmtInt(total)} spectra in ${s.toFixed(1)} s (${s > 0 ? fmtInt(total / s) : '-'} spectra/s)\n`);
        line = '';
      },
      stop: () => undefined,
    };
  }
  const multi = new cliProgress.MultiBar({ stream: process.stderr, hideCursor: true, clearOnComplete: false, format: SPECTRA_FORMAT }, cliProgress.Presets.shades_classic);
  let fieldsBar: cliProgress.SingleBar | null = null, spectraBar: cliProgress.SingleBar | null = null;
  let fieldIndex = 0, fields = 1, name = '', before = 0, current = 0;
  const t0 = performance.now();
  let meter = new Meter();
  return {
    onField(i, n, nm) {
      meter = new Meter();
      before += current;
      current = 0;
      [fieldIndex, fields, name] = [i, n, nm];
      if (!fieldsBar) fieldsBar = multi.create(n, 0, {}, { format: 'fields  [{bar}] field {field}/{fields}: {name} | {done} spectra | {rate} spectra/s | {left} left (all fields)' });
      fieldsBar.update(i, { field: i + 1, fields: n, name, done: fmtInt(before), rate: '-', left: '-' });
      spectraBar?.stop();
      if (spectraBar) multi.remove(spectraBar);
      spectraBar = null;
    },
    onTile(done, total) {
      current = done;
      const m = meter.update(done, total);
      if (!spectraBar) spectraBar = multi.create(total, 0, { label: `field ${fieldIndex + 1}`, unit: 'spectra', done: '0', all: fmtInt(total), rate: '-', left: '-' });
      spectraBar.update(done, { label: `field ${fieldIndex + 1}`, unit: 'spectra', done: fmtInt(done), all: fmtInt(total), ...m });
      const s = (performance.now() - t0) / 1000;
      const all = before + done;
      const rate = s > 0 ? all / s : NaN;
      const remaining = total - done + (fields - fieldIndex - 1) * total;
      fieldsBar?.update(fieldIndex + done / Math.max(1, total), { field: fieldIndex + 1, fields, name, done: fmtInt(all), rate: Number.isFinite(rate) ? fmtInt(rate) : '-', left: Number.isFinite(rate) && rate > 0 ? fmtTime(remaining / rate) : '-' });
    },
    stop() {
      fieldsBar?.update(fields, { field: fields, fields, name, done: fmtInt(before + current), rate: '-', left: '0 s' });
      multi.stop();
    },
  };
}
