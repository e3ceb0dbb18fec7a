import pkg from '../package.json';

/** The engine's version, recorded in every summary.json. */
export const VERSION: string = pkg.version;
