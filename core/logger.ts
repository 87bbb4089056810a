// pino logging: pretty in a terminal, JSON otherwise; secrets are redacted by path.
import pino, { type Logger } from "pino";
import pretty from "pino-pretty";

export type { Logger };

export function createLogger(level: string, format: "auto" | "json" | "pretty"): Logger {
  const usePretty = format === "pretty" || (format === "auto" && process.stdout.isTTY === true);
  const options = {
    level,
    base: { pid: process.pid },
    redact: { paths: ["password", "*.password", "secret", "*.secret", "config.databases.*.password"], censor: "***" },
  };
  if (usePretty) return pino(options, pretty({ colorize: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname", sync: true }));
  return pino(options, pino.destination({ sync: true }));
}
