// Charts as SVG text, drawn on the server: the operator page (/admin) inlines
// them and `npm run bench` writes them beside its JSON. No front-end library
// and no script: a chart is a string that any browser, README viewer or file
// manager shows as it is. It imports nothing, so bench/ and src/ both may.
//
// The markup is regular so that tests (and anyone scraping it) can read the
// structure back: one <svg class="chart"> with a <title>, one
// <g class="axis x-axis"> and one <g class="axis y-axis"> with their ticks, and
// per series one <g class="series" data-series="name">, holding a
// <path class="line"> and a <circle class="point"> per point (line charts) or
// a <rect class="bar"> per category (bar charts); a legend names the series.

export interface Point {
  x: number;
  y: number;
}

export interface Series {
  name: string;
  points: Point[];
}

export interface LineChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** `log` for quantities spanning decades (table sizes, ef_search). */
  xScale?: 'linear' | 'log';
  /** How an x tick reads (default: the number); e.g. a time of day for timestamps. */
  xFormat?: (x: number) => string;
  yFormat?: (y: number) => string;
  /** Start the y axis at zero (counts, latencies) rather than at the data's minimum. */
  yFromZero?: boolean;
  width?: number;
  height?: number;
}

export interface BarChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  /** The categories along the x axis. */
  categories: string[];
  /** One value per category for each series (grouped bars). */
  series: Array<{ name: string; values: number[] }>;
  yFormat?: (y: number) => string;
  width?: number;
  height?: number;
}

const PALETTE = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#be185d', '#4b5563'];
const MARGIN = { top: 36, right: 16, bottom: 48, left: 64 };
const LEGEND_ROW = 18;

/** Text for SVG and HTML: the five characters that could end an attribute or open a tag. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A number as a short label: 1234567 → 1.23M, 0.000123 → 0.000123, 12.5 → 12.5. */
export function shortNumber(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${+(n / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(n / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(n / 1e3).toPrecision(3)}k`;
  return String(+n.toPrecision(3));
}

/** Round tick values covering [min, max]: steps of 1, 2 or 5 times a power of ten. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) / 2;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = Math.floor(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(+v.toPrecision(12));
  if (ticks[ticks.length - 1]! < max) ticks.push(+(ticks[ticks.length - 1]! + step).toPrecision(12));
  return ticks;
}

/** Powers of ten (and 2x, 5x between them when there are few) covering [min, max], both > 0. */
function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  const steps = hi - lo <= 2 ? [1, 2, 5] : [1];
  for (let e = lo; e <= hi; e++) for (const m of steps) ticks.push(m * 10 ** e);
  const inside = ticks.filter((t) => t >= min && t <= max);
  return inside.length >= 2 ? inside : [min, max];
}

const fmt = (n: number): string => String(Math.round(n * 10) / 10);

function frame(width: number, height: number, title: string, kind: string, body: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="${kind}" role="img" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="11">` +
    `<title>${escapeXml(title)}</title>` +
    `<rect class="background" x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>` +
    `<text class="chart-title" x="${width / 2}" y="18" text-anchor="middle" font-size="13" font-weight="600">${escapeXml(title)}</text>` +
    body +
    `</svg>`
  );
}

function legend(names: string[], x: number, y: number): string {
  if (names.length < 2) return '';
  return `<g class="legend">${names
    .map(
      (name, i) =>
        `<g class="legend-item" data-series="${escapeXml(name)}"><rect x="${x}" y="${y + i * LEGEND_ROW - 9}" width="10" height="10" fill="${PALETTE[i % PALETTE.length]}"/>` +
        `<text x="${x + 14}" y="${y + i * LEGEND_ROW}">${escapeXml(name)}</text></g>`,
    )
    .join('')}</g>`;
}

function yAxis(
  ticks: number[],
  toY: (v: number) => number,
  left: number,
  right: number,
  label: string,
  format: (n: number) => string,
  plotTop: number,
  plotBottom: number,
): string {
  const lines = ticks
    .map(
      (t) =>
        `<g class="tick"><line x1="${left}" x2="${right}" y1="${fmt(toY(t))}" y2="${fmt(toY(t))}" stroke="#e5e7eb"/>` +
        `<text x="${left - 6}" y="${fmt(toY(t) + 4)}" text-anchor="end">${escapeXml(format(t))}</text></g>`,
    )
    .join('');
  const middle = (plotTop + plotBottom) / 2;
  return (
    `<g class="axis y-axis"><line x1="${left}" x2="${left}" y1="${plotTop}" y2="${plotBottom}" stroke="#374151"/>${lines}` +
    `<text class="axis-label" transform="translate(14 ${middle}) rotate(-90)" text-anchor="middle">${escapeXml(label)}</text></g>`
  );
}

/** A line chart: one line (with a dot per point) per series. */
export function lineChart(spec: LineChartSpec): string {
  const width = spec.width ?? 560;
  const height = spec.height ?? 300;
  const series = spec.series.map((s) => ({
    ...s,
    points: s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (spec.xScale !== 'log' || p.x > 0)),
  }));
  const all = series.flatMap((s) => s.points);
  const legendWidth = series.length > 1 ? 130 : 0;
  const left = MARGIN.left;
  const right = width - MARGIN.right - legendWidth;
  const top = MARGIN.top;
  const bottom = height - MARGIN.bottom;
  const xFormat = spec.xFormat ?? shortNumber;
  const yFormat = spec.yFormat ?? shortNumber;

  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y);
  const xMin = xs.length ? Math.min(...xs) : 0;
  const xMax = xs.length ? Math.max(...xs) : 1;
  const log = spec.xScale === 'log' && xs.length > 0;
  const yTicks = niceTicks(spec.yFromZero !== false ? Math.min(0, ...ys) : ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1);
  const yLo = yTicks[0]!;
  const yHi = yTicks[yTicks.length - 1]!;
  // On a log scale a few measured values (ef_search 20, 40, 64…; table sizes) are better ticks than powers of ten.
  const distinct = [...new Set(xs)].sort((a, b) => a - b);
  const xTicks = log
    ? distinct.length <= 8
      ? distinct
      : logTicks(xMin, xMax)
    : xMin === xMax
      ? [xMin]
      : niceTicks(xMin, xMax, 5).filter((t) => t >= xMin && t <= xMax);
  const [x0, x1] = log ? [Math.log10(xMin), Math.log10(xMax)] : [xMin, xMax];
  const toX = (x: number): number => {
    const v = log ? Math.log10(x) : x;
    return x1 === x0 ? (left + right) / 2 : left + ((v - x0) / (x1 - x0)) * (right - left);
  };
  const toY = (y: number): number => bottom - ((y - yLo) / (yHi - yLo || 1)) * (bottom - top);

  const xAxis =
    `<g class="axis x-axis"><line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" stroke="#374151"/>` +
    xTicks
      .map(
        (t) =>
          `<g class="tick"><line x1="${fmt(toX(t))}" x2="${fmt(toX(t))}" y1="${bottom}" y2="${bottom + 4}" stroke="#374151"/><text x="${fmt(toX(t))}" y="${bottom + 16}" text-anchor="middle">${escapeXml(xFormat(t))}</text></g>`,
      )
      .join('') +
    `<text class="axis-label" x="${(left + right) / 2}" y="${height - 10}" text-anchor="middle">${escapeXml(spec.xLabel)}</text></g>`;

  const lines = series
    .map((s, i) => {
      const color = PALETTE[i % PALETTE.length];
      const pts = [...s.points].sort((a, b) => a.x - b.x);
      const d = pts.map((p, j) => `${j === 0 ? 'M' : 'L'}${fmt(toX(p.x))},${fmt(toY(p.y))}`).join(' ');
      const dots = pts
        .map(
          (p) =>
            `<circle class="point" cx="${fmt(toX(p.x))}" cy="${fmt(toY(p.y))}" r="3" fill="${color}"><title>${escapeXml(`${s.name}: ${xFormat(p.x)}, ${yFormat(p.y)}`)}</title></circle>`,
        )
        .join('');
      return `<g class="series" data-series="${escapeXml(s.name)}"><path class="line" d="${d}" fill="none" stroke="${color}" stroke-width="2"/>${dots}</g>`;
    })
    .join('');
  const empty =
    all.length === 0 ? `<text class="no-data" x="${(left + right) / 2}" y="${(top + bottom) / 2}" text-anchor="middle" fill="#6b7280">no data yet</text>` : '';
  return frame(
    width,
    height,
    spec.title,
    'line',
    yAxis(yTicks, toY, left, right, spec.yLabel, yFormat, top, bottom) +
      xAxis +
      lines +
      empty +
      legend(
        series.map((s) => s.name),
        right + 16,
        top + 8,
      ),
  );
}

/** A bar chart: one bar per category for each series, grouped side by side. */
export function barChart(spec: BarChartSpec): string {
  const width = spec.width ?? 560;
  const height = spec.height ?? 300;
  const legendWidth = spec.series.length > 1 ? 130 : 0;
  const left = MARGIN.left;
  const right = width - MARGIN.right - legendWidth;
  const top = MARGIN.top;
  const bottom = height - MARGIN.bottom;
  const yFormat = spec.yFormat ?? shortNumber;
  const values = spec.series.flatMap((s) => s.values.filter(Number.isFinite));
  const yTicks = niceTicks(Math.min(0, ...values), values.length ? Math.max(...values) : 1);
  const yLo = yTicks[0]!;
  const yHi = yTicks[yTicks.length - 1]!;
  const toY = (y: number): number => bottom - ((y - yLo) / (yHi - yLo || 1)) * (bottom - top);
  const band = (right - left) / Math.max(1, spec.categories.length);
  const barWidth = (band * 0.8) / Math.max(1, spec.series.length);
  // Long category names (sources, ef values) are cut so they stay under their bar.
  const maxChars = Math.max(3, Math.floor(band / 6));
  const clip = (s: string): string => (s.length > maxChars ? `${s.slice(0, maxChars - 1)}…` : s);

  const xAxis =
    `<g class="axis x-axis"><line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" stroke="#374151"/>` +
    spec.categories
      .map(
        (c, i) =>
          `<g class="tick"><text x="${fmt(left + band * (i + 0.5))}" y="${bottom + 16}" text-anchor="middle">${escapeXml(clip(c))}<title>${escapeXml(c)}</title></text></g>`,
      )
      .join('') +
    `<text class="axis-label" x="${(left + right) / 2}" y="${height - 10}" text-anchor="middle">${escapeXml(spec.xLabel)}</text></g>`;
  const bars = spec.series
    .map((s, si) => {
      const color = PALETTE[si % PALETTE.length];
      const rects = spec.categories
        .map((c, i) => {
          const v = s.values[i] ?? 0;
          const x = left + band * i + band * 0.1 + barWidth * si;
          const y = toY(Math.max(v, 0));
          const h = Math.abs(toY(v) - toY(0));
          return `<rect class="bar" x="${fmt(x)}" y="${fmt(y)}" width="${fmt(barWidth)}" height="${fmt(h)}" fill="${color}"><title>${escapeXml(`${s.name}, ${c}: ${yFormat(v)}`)}</title></rect>`;
        })
        .join('');
      return `<g class="series" data-series="${escapeXml(s.name)}">${rects}</g>`;
    })
    .join('');
  const empty =
    spec.categories.length === 0
      ? `<text class="no-data" x="${(left + right) / 2}" y="${(top + bottom) / 2}" text-anchor="middle" fill="#6b7280">no data yet</text>`
      : '';
  return frame(
    width,
    height,
    spec.title,
    'bar',
    yAxis(yTicks, toY, left, right, spec.yLabel, yFormat, top, bottom) +
      xAxis +
      bars +
      empty +
      legend(
        spec.series.map((s) => s.name),
        right + 16,
        top + 8,
      ),
  );
}
