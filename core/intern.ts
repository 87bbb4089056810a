// One shared copy of the short strings every client repeats (user, database, startup parameters, address).
import { internTable } from "../plugin-sdk/intern.ts";

/**
 * Returns the shared copy of `s`, keeping it when there is room. Ten thousand clients of one application send
 * the same user, database and parameters; sharing them saves ~150 bytes per idle client. Bounded, so hostile
 * clients cannot grow it: once full, new strings are simply not shared.
 */
export const intern: (s: string) => string = internTable(4096, 64);
