/** The codes of a session's timeline index, shared by the server that builds it and the page that draws it. */
export const KIND = { session: 0, command: 1, network: 2, disk: 3 } as const;

export const FLAG = { unseen: 1, truncated: 2, failed: 4, lost: 8 } as const;
