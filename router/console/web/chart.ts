/**
 * A bar chart drawn as SVG by hand (a few dozen lines cost less than any
 * library): one bar per point, the largest value labelled, the time axis
 * labelled at both ends. Values are numbers, labels are text nodes.
 */
const SVG = "http://www.w3.org/2000/svg";

function el(tag: string, attrs: Record<string, string | number>): SVGElement {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** A labelled bar chart of `values` (oldest first); `title` is read by screen readers. */
export function barChart(
  title: string,
  values: readonly number[],
  label: (v: number) => string,
  ends: readonly [string, string],
): SVGSVGElement {
  // Wide and low, so that at a laptop's width the text is its normal size and the chart not too tall.
  const width = 1000;
  const height = 200;
  const pad = { top: 18, bottom: 20 };
  const top = Math.max(0, ...values);
  // All zero: a flat chart, bars of height 0 (no division by zero).
  const max = top > 0 ? top : 1;
  const svg = el("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "chart",
    role: "img",
  }) as SVGSVGElement;
  const t = el("title", {});
  t.textContent = title;
  svg.appendChild(t);
  const slot = width / Math.max(1, values.length);
  const plot = height - pad.top - pad.bottom;
  values.forEach((v, i) => {
    const hgt = v === 0 ? 0 : Math.max(1.5, (v / max) * plot);
    svg.appendChild(
      el("rect", {
        x: i * slot + slot * 0.12,
        y: pad.top + plot - hgt,
        width: slot * 0.76,
        height: hgt,
        rx: 2,
        class: "bar",
      }),
    );
  });
  svg.appendChild(el("line", { x1: 0, x2: width, y1: pad.top + plot, y2: pad.top + plot, class: "axis" }));
  const text = (x: number, y: number, anchor: string, s: string) => {
    const n = el("text", { x, y, "text-anchor": anchor, class: "chart-label" });
    n.textContent = s;
    svg.appendChild(n);
  };
  text(0, 12, "start", `max ${label(top)}`);
  text(0, height - 4, "start", ends[0]);
  text(width, height - 4, "end", ends[1]);
  return svg;
}
