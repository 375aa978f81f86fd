/** The codes of a session's timeline index, shared by the server that builds it and the page that draws it. */
export const KIND = { session: 0, command: 1, network: 2, disk: 3 } as const;

export const FLAG = { unseen: 1, truncated: 2, failed: 4, lost: 8 } as const;

/**
 * How far terminal output's time may trail the kernel's: exec times are stamped in the kernel,
 * output times when the recorder read the bytes off the pty, which can be tens of milliseconds
 * after the shell wrote them (seen: an echoed command line stamped 20 ms after its exec). The
 * screen at an instant therefore shows the output read up to this long after it.
 */
export const OUTPUT_LAG_MS = 50;
