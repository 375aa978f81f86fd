/**
 * Terminal output as lines of plain text, to be read next to the events: each line as a terminal
 * would show it once carriage returns, backspaces, tabs, line erases and cursor moves are applied.
 * Every other control character and escape sequence is dropped, so recorded output can never drive
 * the reviewer's terminal (colours, titles, clipboard, hidden text). Full-screen programs come out
 * as the pieces of text they drew, one per screen row they moved to.
 */

const TAB = 8;

type State = "text" | "escape" | "escapeArgument" | "csi" | "string" | "stringEscape";

export class ScreenText {
  private readonly decoder = new TextDecoder("utf-8");
  private cells: string[] = [];
  private col = 0;
  /** The screen row the cursor is on, as far as absolute moves tell; only its changes matter. */
  private row = 0;
  private state: State = "text";
  private params = "";
  private lines: string[] = [];

  /** Feeds output bytes (sequences may span calls); returns the lines they completed. */
  write(bytes: Uint8Array): string[] {
    for (const ch of this.decoder.decode(bytes, { stream: true })) this.char(ch);
    return this.take();
  }

  /** Ends the line in progress, if anything is on it; returns the lines completed. */
  flush(): string[] {
    this.endLine(false);
    return this.take();
  }

  private take(): string[] {
    const lines = this.lines;
    this.lines = [];
    return lines;
  }

  private char(ch: string) {
    switch (this.state) {
      case "text":
        return this.text(ch);
      case "escape":
        if (ch === "[") this.enter("csi");
        // OSC, DCS, SOS, PM, APC: strings up to BEL or ST, all dropped.
        else if ("]PX^_".includes(ch)) this.enter("string");
        else if ("()*+-./#%".includes(ch)) this.enter("escapeArgument");
        else this.enter("text");
        return;
      case "escapeArgument":
        return this.enter("text");
      case "csi":
        if (ch >= "\x40" && ch <= "\x7e") {
          this.csi(ch);
          this.enter("text");
        } else if (ch >= "\x20" && ch <= "\x3f") this.params += ch;
        else this.enter("text");
        return;
      case "string":
        if (ch === "\x07") this.enter("text");
        else if (ch === "\x1b") this.enter("stringEscape");
        return;
      case "stringEscape":
        if (ch === "\\") this.enter("text");
        else {
          this.enter("escape");
          this.char(ch);
        }
    }
  }

  private enter(state: State) {
    this.state = state;
    if (state === "csi") this.params = "";
  }

  private text(ch: string) {
    if (ch === "\x1b") return this.enter("escape");
    if (ch === "\n") {
      this.row++;
      return this.endLine(true);
    }
    if (ch === "\r") this.col = 0;
    else if (ch === "\b") this.col = Math.max(0, this.col - 1);
    else if (ch === "\t") this.col = (Math.floor(this.col / TAB) + 1) * TAB;
    else if (isPrintable(ch)) {
      while (this.cells.length < this.col) this.cells.push(" ");
      this.cells[this.col++] = ch;
    }
  }

  /** Applies the CSI sequences that change what a line shows or which line the cursor is on. */
  private csi(final: string) {
    if (this.params.startsWith("?") || this.params.startsWith(">") || this.params.startsWith("=")) return;
    const args = this.params.split(";").map((p) => Number.parseInt(p, 10));
    const n = args[0] || 0;
    switch (final) {
      case "K": // erase in line
        if (n === 0) this.cells.length = Math.min(this.cells.length, this.col);
        else if (n === 1) this.cells.fill(" ", 0, Math.min(this.col + 1, this.cells.length));
        else this.cells = [];
        return;
      case "C": // cursor forward
        this.col += n || 1;
        return;
      case "D": // cursor back
        this.col = Math.max(0, this.col - (n || 1));
        return;
      case "G": // cursor to column
      case "`":
        this.col = Math.max(0, (n || 1) - 1);
        return;
      case "H": // cursor to row;column
      case "f":
        this.moveTo(n || 1, Math.max(0, (args[1] || 1) - 1));
        return;
      case "d": // cursor to row
        this.moveTo(n || 1, this.col);
        return;
      case "A": // cursor up, down
      case "B":
      case "E":
      case "F":
        this.moveTo(
          this.row + (final === "A" || final === "F" ? -(n || 1) : n || 1),
          final === "E" || final === "F" ? 0 : this.col,
        );
        return;
      case "J": // erase in display
        if (n >= 2) this.endLine(false);
    }
  }

  private moveTo(row: number, col: number) {
    if (row !== this.row) this.endLine(false);
    this.row = row;
    this.col = col;
  }

  /** A line feed always ends a line, even an empty one; a cursor move only one with text on it. */
  private endLine(lineFeed: boolean) {
    const text = this.cells.join("").trimEnd();
    if (lineFeed || text) this.lines.push(text);
    this.cells = [];
    if (lineFeed) this.col = 0;
  }
}

/** Not a C0 or C1 control character, nor DEL. */
function isPrintable(ch: string): boolean {
  const code = ch.codePointAt(0)!;
  return code >= 0x20 && code !== 0x7f && !(code >= 0x80 && code < 0xa0);
}
