// What a client's prepared statements' texts showed at Parse, kept so that each later Bind of one is judged the same.

/**
 * The marks of one client's statements, by the client's own names (seen before pgbun:prepared-statements renames
 * them). Only what is needed is kept: a Set of the named statements whose text may change session state, made on
 * the first one, and two flags for the unnamed statement.
 *
 * The unnamed statement's marks are forgotten when pgbun's state check starts: the check is a simple Query, which
 * drops the unnamed statement on the server. A Parse of the unnamed statement replaces its marks; should that
 * Parse be skipped (an earlier error in its pipeline), the old statement was parsed in this transaction, which is
 * then checked at its end anyway (the old Parse marked it suspect), or in an earlier one, whose check dropped it.
 */
export class StatementMarks {
  /** Named statements whose text may change session state. */
  changing: Set<string> | null = null;
  /** The unnamed statement's text may change session state. */
  unnamedChanging = false;
  /** The unnamed statement's text is proven harmless (verify mode). */
  unnamedHarmless = false;

  /** A Parse of `name` ("" for the unnamed statement) with a text of this kind. */
  parsed(name: string, changing: boolean, harmless = false): void {
    if (name === "") {
      this.unnamedChanging = changing;
      this.unnamedHarmless = harmless && !changing;
    } else if (changing) (this.changing ??= new Set()).add(name);
    // a named statement is never unmarked by a Parse: a Parse of a name in use fails and the old text stays
  }

  /** Close 'S' of a named statement: pgbun:prepared-statements drops the client's name whatever the server says. */
  closed(name: string): void {
    if (this.changing === null) return;
    this.changing.delete(name);
    if (this.changing.size === 0) this.changing = null;
  }

  /** DISCARD ALL / DEALLOCATE ALL: every named statement of the client is gone. */
  deallocatedAll(): void {
    this.changing = null;
  }

  /** The state check (a simple Query) is about to run: it drops the unnamed statement. */
  checkStarted(): void {
    this.unnamedChanging = false;
    this.unnamedHarmless = false;
  }

  /** Bind of the statement whose name is buf[from, nameEnd): may it change session state? */
  bindMayChange(buf: Uint8Array, from: number, nameEnd: number): boolean {
    if (from === nameEnd) return this.unnamedChanging;
    return this.changing !== null && this.changing.has(latin1(buf, from, nameEnd));
  }

  /** True while some statement is marked changing (the Bind hook reads names only then). */
  get anyChanging(): boolean {
    return this.unnamedChanging || this.changing !== null;
  }
}

/** A statement name as a string: bytes as Latin-1, one char each, the same at Parse, Bind and Close. */
export function latin1(buf: Uint8Array, from: number, to: number): string {
  if (from >= to) return "";
  return (Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)).toString("latin1", from, to);
}
