/**
 * Ctrl-C, `kill` and a closed terminal (SIGINT, SIGTERM, SIGHUP) all end a run the same way:
 * the registered clean-ups run (a temporary output folder is removed), then the process
 * exits at once with 128 + the signal number (130 for Ctrl-C), as a shell expects.
 */
const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
type Sig = keyof typeof SIGNALS;

const cleanups = new Set<() => void>();
let installed = false;

function handler(sig: Sig): void {
  for (const c of [...cleanups]) {
    try {
      c();
    } catch {
      // a clean-up that fails must not keep the process alive
    }
  }
  process.exit(128 + SIGNALS[sig]);
}

/** Runs `cleanup` if the process is interrupted before the returned release is called. */
export function onInterrupt(cleanup: () => void): () => void {
  if (!installed) {
    for (const s of Object.keys(SIGNALS) as Sig[]) process.on(s, handler);
    installed = true;
  }
  cleanups.add(cleanup);
  return () => {
    cleanups.delete(cleanup);
  };
}
