// Output of the driver: one JSON object per line on stdout (PROTOCOL.md). Nothing else may
// be written to stdout; logs go to stderr.

export function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
}

export function log(...args) {
  process.stderr.write(args.map(String).join(' ') + '\n');
}

/// A harness failure: reported once, then the process exits non-zero.
export class Fatal extends Error {}
