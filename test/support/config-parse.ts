/** Parsing config text in tests, and the one line a bad config is reported with. */
import { ConfigError, parseConfig } from "../../lib/config/config.ts";
import { EsrError } from "../../lib/errors.ts";

export function parse(text: string) {
  return parseConfig([{ name: "f.yaml", text }]);
}

/** The message of the ConfigError (or EsrError) `fn` throws; anything else is rethrown. */
export function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError || err instanceof EsrError) return err.message;
    throw err;
  }
  throw new Error("expected an error");
}
