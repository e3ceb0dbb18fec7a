/**
 * An error in what the user gave us (a file, an option). The CLI prints its message as one
 * line and exits non-zero; the message always starts with the file or option it is about.
 */
export class InputError extends Error {
  constructor(where: string, problem: string) {
    super(`${where}: ${problem}`);
    this.name = 'InputError';
  }
}
