// The plugin-state record of a connection (Client.data, Server.data): one property per loaded plugin, declared up front.

/** A plugin-state record: a property per plugin name, undefined until that plugin stores something. */
export type PluginData = Record<string, unknown>;

/**
 * Makes records with a property for each name, all undefined, declared in one order by one constructor. Every
 * client's (and every server's) record then has the same shape whichever plugin stores first, so a tap's
 * `client.data[NAME]` stays a single-shape load. With a plain `{}` each order in which plugins first stored made a
 * shape of its own, and as new clients came the relay's optimised code met shapes it had not seen: BadCache exits and
 * re-optimisation of the hottest functions (JSC's verboseOSR, bench/results/issue-14-ninth). Other keys still work;
 * they only add to the shape.
 */
export function pluginDataFactory(names: readonly string[]): () => PluginData {
  const unique = [...new Set(names)];
  // JSON.stringify quotes any name safely; "__proto__" is left out (assigning undefined to it does nothing anyway)
  const body = unique.filter((n) => n !== "__proto__").map((n) => `this[${JSON.stringify(n)}] = undefined;`).join("\n");
  const DataRecord = new Function(body) as unknown as { new (): PluginData; prototype: object };
  DataRecord.prototype = Object.prototype; // a plain object to plugins: no constructor of its own on the chain
  return () => new DataRecord();
}
