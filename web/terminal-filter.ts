/**
 * Recorded terminal output made safe for the browser's terminal widget: every control string (OSC,
 * DCS, SOS, PM, APC) is removed before the bytes leave the server. Those carry what a recorded
 * user could turn against the reviewer: OSC 52 writes the reviewer's clipboard, OSC 8 makes links,
 * OSC 0/2 retitle the page, DCS queries make the terminal answer. What draws the screen (text,
 * CSI cursor moves, colours) stays as recorded.
 *
 * The introducers are recognised in both forms a terminal parser accepts: 7-bit `ESC ]` …, and the
 * 8-bit C1 code points (U+009D OSC, U+0090 DCS, U+0098 SOS, U+009E PM, U+009F APC), which reach the
 * widget as the two UTF-8 bytes C2 9x. A string ends at BEL, ST (`ESC \` or U+009C), or CAN/SUB;
 * an ESC followed by anything else ends it too and starts a new sequence, as in the VT parser.
 */

const ESC = 0x1b;
const BEL = 0x07;
const CAN = 0x18;
const SUB = 0x1a;
/** Second byte of the UTF-8 form of a C1 string introducer (C2 90, C2 98, C2 9D, C2 9E, C2 9F). */
const C1_INTRODUCERS = new Set([0x90, 0x98, 0x9d, 0x9e, 0x9f]);
const C1_ST = 0x9c;
/** The final byte after ESC that opens a string: ] OSC, P DCS, X SOS, ^ PM, _ APC. */
const ESC_INTRODUCERS = new Set([0x5d, 0x50, 0x58, 0x5e, 0x5f]);

type State = "text" | "escape" | "c2" | "string" | "stringEscape" | "stringC2";

export class TerminalFilter {
  private state: State = "text";

  /** Filters one piece of output; sequences may span pieces. */
  write(bytes: Uint8Array): Uint8Array {
    const out = new Uint8Array(bytes.length + 2);
    let n = 0;
    for (const b of bytes) {
      switch (this.state) {
        case "text":
          if (b === ESC) this.state = "escape";
          else if (b === 0xc2) this.state = "c2";
          else out[n++] = b;
          break;
        case "escape":
          if (ESC_INTRODUCERS.has(b)) this.state = "string";
          else {
            out[n++] = ESC;
            if (b === ESC) break; // ESC ESC: the second one starts the sequence
            if (b === 0xc2) this.state = "c2";
            else {
              out[n++] = b;
              this.state = "text";
            }
          }
          break;
        case "c2":
          if (C1_INTRODUCERS.has(b)) this.state = "string";
          else {
            out[n++] = 0xc2;
            if (b === ESC) this.state = "escape";
            else if (b !== 0xc2) {
              out[n++] = b;
              this.state = "text";
            }
          }
          break;
        case "string":
          if (b === BEL || b === CAN || b === SUB) this.state = "text";
          else if (b === ESC) this.state = "stringEscape";
          else if (b === 0xc2) this.state = "stringC2";
          break;
        case "stringEscape":
          if (b === 0x5c) this.state = "text";
          else if (ESC_INTRODUCERS.has(b)) this.state = "string";
          else if (b === ESC) this.state = "escape";
          else {
            out[n++] = ESC;
            if (b === 0xc2) this.state = "c2";
            else {
              out[n++] = b;
              this.state = "text";
            }
          }
          break;
        case "stringC2":
          if (b === C1_ST || b === BEL || b === CAN || b === SUB) this.state = "text";
          else if (C1_INTRODUCERS.has(b)) this.state = "string";
          else if (b === ESC) this.state = "stringEscape";
          else if (b !== 0xc2) this.state = "string";
          break;
      }
    }
    return out.subarray(0, n);
  }
}
