// ToyMoEPlot: standalone SVG figures and a self-contained HTML index, drawn by hand.
//
// No plotting library is available offline, so every chart here writes SVG text directly. The module is
// organised in three layers:
//
// * Primitives: `SVGFormat` (locale-independent number formatting and XML escaping), `RGB` / `Colormap` /
//   `Palette` (viridis, coolwarm, tab10 and the phase-diagram 2-D map), `Axis` / `ResolvedAxis` (linear and
//   log scales with tick generation) and `SVGCanvas` (an append-only SVG body with de-duplicated `<defs>`).
// * Layout: the `Panel` protocol (anything that can draw itself into a rectangle) and `Figure`, which lays
//   panels out on a grid (`GridLayout`) and wraps them in one SVG document (`xmlns`, `viewBox`,
//   width/height, `<title>`, embedded `<style>`).
// * Charts (all value types, `Sendable`, deterministic: the same input gives the same bytes):
//   `BarChart` (per-bar colours, marker line, colour bar), `Heatmap`, `XYPlot` (lines, scatter, error bars,
//   log axes, reference lines, legend), `ImageMap` / `CategoryMap` (big cell grids, runs of equal colour
//   merged), `ColorLegend2D`, `BoxPlot`, `GroupedBarChart`, `VectorDiagram`, `NetworkDiagram`,
//   `TextPanel`, `EmptyPanel`; and the HTML side: `HTMLTable`, `HTMLIndex`.
//
// Every element a reader (or a test) may want to find carries a class: `bar`, `cell`, `marker`, `colorbar`,
// `legend`, `frame`, `tick`, `axis-label`, `title`, `series`, `point`, `errorbar`, `reference`, `box`,
// `median`, `whisker`, `outlier`, `vector`, `tip`, `unit-circle`, `swatch`.
//
// Typical use:
//
//     let bars = BarChart(title: "expert 0", values: norms, colorValues: q, markerX: 5.5)
//     try Figure(title: "Fig. 2a", panels: [bars, bars2, bars3], columns: 3).write(to: url)
