/**
 * One progress line while the report runs: on a terminal it is rewritten in place (\r, then the
 * rest of the line cleared), elsewhere (CI logs, a pipe) each new state is a plain line of its own.
 */

/** The part of a stream the progress line writes to (process.stdout, or a test's fake). */
export interface ProgressOut {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

export interface Progress {
  update(text: string): void;
  /** Ends the line in place, so that what is printed next starts on a line of its own. */
  done(): void;
}

export function createProgress(out: ProgressOut): Progress {
  let last = '';
  let open = false;
  return {
    update(text) {
      if (text === last) return;
      last = text;
      if (out.isTTY !== true) {
        out.write(`${text}\n`);
        return;
      }
      // Cut to the terminal's width: a wrapped line cannot be rewritten with \r.
      const width = Math.max(20, (out.columns ?? 100) - 1);
      out.write(`\r${text.length > width ? `${text.slice(0, width - 1)}…` : text}\x1b[K`);
      open = true;
    },
    done() {
      if (open) out.write('\n');
      open = false;
    },
  };
}
