/** Filter forms whose values live in the URL, so a filtered view can be linked and reloaded. */
import { h } from "./dom.ts";

export interface Field {
  name: string;
  label: string;
  type?: "text" | "datetime-local" | "select";
  options?: string[];
  placeholder?: string;
}

export function filterForm(fields: Field[], params: URLSearchParams): HTMLFormElement {
  const controls = fields.map((f) => {
    const value = params.get(f.name) ?? "";
    const input =
      f.type === "select"
        ? h(
            "select",
            { name: f.name },
            ...(f.options ?? []).map((o) => h("option", { value: o, selected: o === value }, o || "any")),
          )
        : h("input", {
            name: f.name,
            type: f.type ?? "text",
            value,
            placeholder: f.placeholder,
            step: f.type === "datetime-local" ? 1 : undefined,
          });
    return h("label", {}, f.label, " ", input);
  });
  const form = h("form", { class: "filters", method: "get" }, ...controls, h("button", { type: "submit" }, "Filter"));
  // Empty fields stay out of the URL.
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (typeof v === "string" && v.trim()) next.set(k, v.trim());
    location.search = next.toString();
  });
  return form;
}

/** Previous/next links that keep the filters. */
export function pager(params: URLSearchParams, page: number, more: boolean): HTMLElement {
  const link = (p: number, text: string) => {
    const next = new URLSearchParams(params);
    if (p) next.set("page", String(p));
    else next.delete("page");
    return h("a", { href: `?${next}`, class: "page-link" }, text);
  };
  return h(
    "nav",
    { class: "pager" },
    page > 0 && link(page - 1, "← newer"),
    ` page ${page + 1} `,
    more && link(page + 1, "older →"),
  );
}

/** The API query for the page's own filters. */
export function query(params: URLSearchParams, names: string[]): string {
  const q = new URLSearchParams();
  for (const n of [...names, "page"]) {
    const v = params.get(n);
    if (v) q.set(n, v);
  }
  return q.toString();
}
