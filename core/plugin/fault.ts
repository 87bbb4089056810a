// A plugin's error, carrying the plugin's name so logs and clients can say who failed.
import { mapStack } from "./source-map.ts";

export class PluginFault extends Error {
  constructor(
    readonly plugin: string,
    override readonly cause: unknown,
  ) {
    super(`plugin "${plugin}" failed: ${PluginFault.reasonOf(cause)}`);
    this.name = "PluginFault";
    // the cause is what gets logged: its frames in a compiled path plugin should name the plugin's own files
    if (cause instanceof Error && typeof cause.stack === "string") {
      try {
        cause.stack = mapStack(cause.stack);
      } catch {
        // a read-only stack (a frozen error) is left as it is: this must not become a fault of its own
      }
    }
  }

  /**
   * The cause as a logger may take it: pino's error serializer adds properties to an Error, which throws for a
   * frozen one (and a throw while reporting a fault would end the session silently); such a cause is copied.
   */
  get logged(): unknown {
    const c = this.cause;
    if (!(c instanceof Error) || Object.isExtensible(c)) return c;
    return { type: c.name, message: c.message, stack: c.stack };
  }

  get reason(): string {
    return PluginFault.reasonOf(this.cause);
  }

  static reasonOf(err: unknown): string {
    return err instanceof Error ? err.message : String(err);
  }

  /** Wraps any error; an error not attributed to a plugin is reported as the core's. */
  static from(err: unknown): PluginFault {
    return err instanceof PluginFault ? err : new PluginFault("pgbun-core", err);
  }

  /**
   * What a tap of `plugin` threw, as the fault to throw on: a PluginFault passes as it is (a nested tap's, already
   * counted); anything else is counted (`faulted`) and wrapped with the plugin's name.
   */
  static of(plugin: string, err: unknown, faulted?: (plugin: string) => void): PluginFault {
    if (err instanceof PluginFault) return err;
    faulted?.(plugin);
    return new PluginFault(plugin, err);
  }

  /**
   * Wraps a tap function so anything it throws (or rejects with) names its plugin. Fixed arity (pgbun's hooks
   * take at most three arguments): a rest parameter would allocate an array on every call of a hot hook.
   * `faulted` is told the plugin's name once per fault (the per-plugin counts of api.plugins()).
   */
  static wrap<F extends (...args: any[]) => any>(plugin: string, fn: F, kind: "sync" | "async" | "promise", faulted?: (plugin: string) => void): F {
    if (kind === "promise") {
      return (async (a: unknown, b: unknown, c: unknown) => {
        try {
          return await fn(a, b, c);
        } catch (err) {
          throw PluginFault.of(plugin, err, faulted);
        }
      }) as unknown as F;
    }
    return ((a: unknown, b: unknown, c: unknown) => {
      try {
        return fn(a, b, c);
      } catch (err) {
        throw PluginFault.of(plugin, err, faulted);
      }
    }) as unknown as F;
  }
}
