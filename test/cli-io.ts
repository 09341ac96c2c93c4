/** What a CLI command wrote, captured: pass it as the command's `io` and read `out` and `err` afterwards. */
import type { CliIO } from '../src/cli/io.js';

export function captureIO(): CliIO & { out: string; err: string } {
  const io = {
    out: '',
    err: '',
    stdout(text: string) {
      io.out += text;
    },
    stderr(text: string) {
      io.err += text;
    },
  };
  return io;
}
