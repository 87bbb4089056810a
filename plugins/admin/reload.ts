// RELOAD and SET from the admin console: applied before the answer, errors as ErrorResponses, restart-only changes as warnings.
import { commandComplete, noticeResponse, type PluginApi, type ReloadOutcome } from "../../plugin-sdk/index.ts";

/** The answer of a reload or SET: bytes (WARNINGs, then the tag), or an error. */
export type ReloadReply = { kind: "now"; bytes: Buffer } | { kind: "error"; message: string; code?: string };

/** cant_change_runtime_param: what PostgreSQL reports for a postmaster setting changed by a reload. */
const NEEDS_RESTART = "55P02";
const CONFIG_FILE_ERROR = "F0000";
const SQLSTATE = /^[0-9A-Z]{5}$/;

/**
 * A failed reload or SET as the console's error: the configuration error's file, key and reason (a SET names
 * no file), and its SQLSTATE (config_file_error unless the error carries another).
 */
export function configErrorReply(err: unknown): ReloadReply {
  const e = err as { file?: unknown; key?: unknown; reason?: unknown; code?: unknown } | null;
  const code = typeof e?.code === "string" && SQLSTATE.test(e.code) ? e.code : CONFIG_FILE_ERROR;
  if (typeof e?.key === "string" && typeof e.reason === "string") {
    return { kind: "error", code, message: typeof e.file === "string" ? `${e.file}: ${e.key}: ${e.reason}` : `${e.key}: ${e.reason}` };
  }
  return { kind: "error", code, message: err instanceof Error ? err.message : String(err) };
}

/**
 * A WARNING per setting the reload left at its running value, as PostgreSQL words it for its own, and one per
 * changed setting pgbun accepts and does not act on (01000, the log's warning).
 */
export function restartWarnings(outcome: ReloadOutcome): Buffer[] {
  return [
    ...outcome.restartNeeded.map((r) =>
      noticeResponse(
        `${r.name} cannot be changed without restarting pgbun: ${r.running} stays in force (the configuration asks for ${r.requested})`,
        NEEDS_RESTART,
        "WARNING",
      ),
    ),
    ...(outcome.notActedOn ?? []).map((message) => noticeResponse(message, "01000", "WARNING")),
  ];
}

/** RELOAD in this process: answered once the configuration is applied; a broken file changes nothing and is the error. */
export async function reloadHere(api: PluginApi): Promise<ReloadReply> {
  try {
    const outcome = await api.reload();
    return { kind: "now", bytes: Buffer.concat([...restartWarnings(outcome), commandComplete("RELOAD")]) };
  } catch (err) {
    const reply = configErrorReply(err);
    api.log.error({}, `RELOAD failed, keeping the running configuration: ${reply.kind === "error" ? reply.message : ""}`);
    return reply;
  }
}

/** `SET key = value` in this process, applied as a reload (SHOW CONFIG shows it; the next RELOAD reads the file again). */
export function setHere(api: PluginApi, key: string, value: string): ReloadReply {
  try {
    const outcome = api.setSetting(key, value);
    return { kind: "now", bytes: Buffer.concat([...restartWarnings(outcome), commandComplete("SET")]) };
  } catch (err) {
    return configErrorReply(err);
  }
}
