// Runs the built `xanes` CLI (dist/cli.js) in this process and reports, as the last line of
// stdout, its exit code and the peak resident size the operating system recorded for the
// whole process (getrusage: every thread, workers included), in KiB.
import { fileURLToPath } from 'node:url';
const { main } = await import(fileURLToPath(new URL('../../dist/cli.js', import.meta.url)));
const code = await main(process.argv.slice(2));
process.stdout.write(`\n${JSON.stringify({ code, maxRssKiB: process.resourceUsage().maxRSS })}\n`);
process.exit(code);
