/** The process tree (`esr replay --tree` as a page): click an exec to seek there. */
import { safeLine } from "../../lib/events/safe-text.ts";
import { h } from "./dom.ts";

export interface TreeNode {
  pid: number;
  ppid?: number;
  execs: { ei: number; ms: number; text: string; failed: boolean; unseen: boolean }[];
  activity: { ei: number; ms: number; text: string; count: number }[];
  children: TreeNode[];
}

export function treeView(roots: TreeNode[], seek: (ms: number) => void): HTMLElement {
  const node = (n: TreeNode): HTMLElement => {
    const execs = n.execs.length
      ? n.execs.map((e, i) =>
          h(
            "div",
            {
              class: `exec${e.failed ? " failed" : ""}${e.unseen ? " unseen" : ""}`,
              title: e.unseen ? "never shown on screen" : undefined,
              onclick: () => seek(e.ms),
            },
            i ? "↳ " : "",
            safeLine(e.text),
          ),
        )
      : [h("div", { class: "exec none" }, "(no exec recorded)")];
    const activity = n.activity.map((a) =>
      h("div", { class: "activity", onclick: () => seek(a.ms) }, safeLine(a.text), a.count > 1 ? ` ×${a.count}` : ""),
    );
    return h(
      "li",
      {},
      h("span", { class: "pid" }, String(n.pid)),
      ...execs,
      ...activity,
      n.children.length ? h("ul", {}, ...n.children.map(node)) : null,
    );
  };
  return h("ul", { class: "tree" }, ...roots.map(node));
}
