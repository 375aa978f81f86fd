/**
 * An error meant for the operator: the CLI prints its message as one line on stderr and exits
 * non-zero, without a stack trace. Anything else that escapes is a bug and is reported as such.
 */
export class EsrError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "EsrError";
  }
}

/** The message of any thrown value, for one-line reports. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
