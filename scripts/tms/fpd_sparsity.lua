-- "Toy Models of Superposition" (Elhage et al. 2022), dimensions per feature vs sparsity (docs/PAPER.md#tms).
-- Notebook setup: n = 200 features, m = 20 hidden dimensions, uniform importance, densities p_k = 20^(−k/19)
-- (20 levels, sparsity 0 … 0.95); paper setup (`paper=true`): n = 400, m = 30. TMS training: ReLU-output model
-- (an E = 1 model here), mean-over-features loss, AdamW 1e-3 (wd 0.01), batch 1024, 10,000 steps, Xavier W, b = 0.
-- The claims: D* = m/‖W‖_F² (dimensions per feature) is ≈ 1 when dense, "sticks" at ½ (antipodal pairs) over a
-- range of sparsity and falls below ½ when sparser; the per-feature dimensionalities D_i cluster on the fractions
-- 1, ¾, ⅔, ½, ⅖, ⅜ (and 0 for dropped features).
--
--   toymoe run scripts/tms/fpd_sparsity.lua [scale=quick|full] [paper=true] [levels=L] [steps=N] [n=..] [m=..]
--              --out results/tms_fpd --jobs 2
--
-- quick: n = 80, m = 8, 8 levels, 2000 steps (≈ 35 s CPU, ≈ 20 s with --jobs 2 on an idle machine); full: n = 200, m = 20, 20 levels,
-- 10,000 steps (≈ 15 min with --jobs 2); paper=true: n = 400, m = 30 (≈ 4× the full cost).
local scale = toymoe.param("scale", "quick")
assert(scale == "quick" or scale == "full", "scale must be 'quick' or 'full', got " .. tostring(scale))
local paper = toymoe.param("paper", false)
paper = paper == true or paper == "true" or paper == 1
local full = scale == "full" or paper
local n = toymoe.param("n", paper and 400 or (full and 200 or 80))
local m = toymoe.param("m", paper and 30 or (full and 20 or 8))
local levels = toymoe.param("levels", full and 20 or 8)
local steps = toymoe.param("steps", full and 10000 or 2000)
local M = toymoe.metrics

local cells = {}
for k = 0, levels - 1 do cells[#cells + 1] = { k = k } end

toymoe.sweep{
  name = "tms_fpd",
  cells = cells,
  run = function(cell)
    local p = levels > 1 and 20 ^ (-cell.k / (levels - 1)) or 1
    local model = toymoe.model{ n_features = n, n_hidden = m, init = { W = "xavier", b_final = "zero" } }
    local r = toymoe.train(model, { data = toymoe.data{ n_features = n, feature_probability = p },
                                    steps = steps, batch_size = 1024, loss = "mean" })
    local g = M.geometry(model)
    return { density = p, inverse_density = 1 / p, final_loss = r.final_loss,
             dimensions_per_feature = M.dimensions_per_feature(model),
             D = M.feature_dimensionality(model), features_represented = g.features_represented,
             antipodal_pairs = #g.antipodal_pairs }
  end,
  finish = function(rows)
    local x, dstar, fpd, per_density = {}, {}, {}, {}
    local sx, sy = {}, {}
    local fractions = { 1, 3 / 4, 2 / 3, 1 / 2, 2 / 5, 3 / 8 }
    for _, row in ipairs(rows) do
      local r = row.replicates[1]
      x[#x + 1] = r.inverse_density
      dstar[#dstar + 1] = r.dimensions_per_feature
      fpd[#fpd + 1] = 1 / r.dimensions_per_feature
      -- Fraction of represented features (D_i > 0.1) sitting within 0.03 of one of the reference fractions.
      local near, counted = 0, 0
      for _, d in ipairs(r.D) do
        sx[#sx + 1] = r.inverse_density
        sy[#sy + 1] = d
        if d > 0.1 then
          counted = counted + 1
          for _, f in ipairs(fractions) do if math.abs(d - f) < 0.03 then near = near + 1; break end end
        end
      end
      per_density[#per_density + 1] = { density = r.density, sparsity = 1 - r.density, inverse_density = r.inverse_density,
        dimensions_per_feature = r.dimensions_per_feature, features_per_dimension = 1 / r.dimensions_per_feature,
        features_represented = r.features_represented, antipodal_pairs = r.antipodal_pairs, final_loss = r.final_loss,
        fraction_on_reference_lines = counted > 0 and near / counted or 0 }
    end
    local top = 1.1                      -- keep every point visible (an unconverged dense model can exceed 1)
    for _, v in ipairs(sy) do top = math.max(top, v + 0.05) end
    for _, v in ipairs(dstar) do top = math.max(top, v + 0.05) end
    local refs = {}
    local names = { "1", "3/4", "2/3", "1/2", "2/5", "3/8" }
    for j, f in ipairs(fractions) do refs[j] = { value = f, label = names[j] } end
    refs[1].legend = "fractions of the TMS paper"  -- one legend entry for the six dashed lines (same style)
    toymoe.plot.lines{ file = "tms_fpd_dstar.svg", x_log = true, reference_y = refs,
      title = "D* = m/‖W‖² vs sparsity", footnote = string.format("n = %d, m = %d, uniform importance; ‖W‖: Frobenius norm", n, m),
      panel_size = { 560, 380 },
      x_label = "1/(1−S)", y_label = "D* (dimensions per feature)", y_range = { 0, top },
      legend = "top_right",  -- D* starts near 1 at the left: the legend would cover it there
      series = { { label = "D*", x = x, y = dstar } } }
    toymoe.plot.scatter{ file = "tms_fpd_features.svg", x_log = true, reference_y = refs,
      title = "Per-feature dimensionality Dᵢ", footnote = string.format("n = %d, m = %d, uniform importance", n, m),
      panel_size = { 560, 380 },
      x_label = "1/(1−S)", y_label = "Dᵢ", y_range = { -0.02, top }, legend = "top_right",
      series = { { label = "Dᵢ (one per feature)", x = sx, y = sy, size = 2.2, opacity = 0.35 },
                 { label = "D*", x = x, y = dstar, color = "#d62728", size = 4, opacity = 1 } } }
    toymoe.plot.lines{ file = "tms_fpd_inverse.svg", x_log = true, reference_y = { value = 1, legend = "one feature per dimension" },
      title = "Features per dimension ‖W‖²/m (Frobenius)", panel_size = { 560, 380 }, x_label = "1/(1−S)", y_label = "features per dimension",
      series = { { label = "1/D*", x = x, y = fpd } } }
    -- The sticky ½ plateau: densities where D* lies within ±0.05 of ½.
    local lo, hi, count = nil, nil, 0
    for _, e in ipairs(per_density) do
      if math.abs(e.dimensions_per_feature - 0.5) <= 0.05 then
        count = count + 1
        lo = lo and math.min(lo, e.inverse_density) or e.inverse_density
        hi = hi and math.max(hi, e.inverse_density) or e.inverse_density
      end
    end
    local dense, sparsest = per_density[1], per_density[#per_density]
    local summary = {
      figure = "TMS dimensions per feature vs sparsity", scale = scale, paper_config = paper, n = n, m = m,
      levels = levels, steps = steps, per_density = per_density,
      dimensions_per_feature = dstar, inverse_density = x,
      dense_dimensions_per_feature = dense.dimensions_per_feature,
      sparsest_dimensions_per_feature = sparsest.dimensions_per_feature,
      half_plateau = { levels = count, inverse_density_min = lo or 0, inverse_density_max = hi or 0,
                       sparsity_min = lo and 1 - 1 / lo or 0, sparsity_max = hi and 1 - 1 / hi or 0 },
      paper = "D* ≈ 1 dense, sticky at 1/2 over a range of sparsity, below 1/2 when sparse; D_i on 1, 3/4, 2/3, 1/2, 2/5, 3/8",
    }
    summary.reproduced = dense.dimensions_per_feature > 0.8 and count >= (levels >= 12 and 2 or 1) and sparsest.dimensions_per_feature < 0.45
    toymoe.save_json("summary.json", summary)
    local trows = {}
    for _, e in ipairs(per_density) do
      trows[#trows + 1] = { e.density, e.inverse_density, e.dimensions_per_feature, e.features_represented,
                            e.antipodal_pairs, e.fraction_on_reference_lines, e.final_loss }
    end
    toymoe.plot.report{ file = "index.html", title = "TMS: dimensions per feature vs sparsity",
      introduction = string.format("n = %d, m = %d, uniform importance, densities 20^(−k/%d), mean loss, batch 1024, "
        .. "%d steps, b = 0 init (docs/PAPER.md#tms).", n, m, math.max(levels - 1, 1), steps),
      figures = {
        { heading = "D* vs sparsity", file = "tms_fpd_dstar.svg", caption = "Reference lines at the fractions 1, 3/4, 2/3, 1/2, 2/5, 3/8" },
        { heading = "Per-feature Dᵢ", file = "tms_fpd_features.svg", caption = "Each dot one feature at one density; red: D*" },
        { heading = "Features per dimension", file = "tms_fpd_inverse.svg", caption = "The inverse, ‖W‖²/m (Frobenius norm)" },
      },
      tables = { { caption = "Per density", header = { "density", "1/(1−S)", "D*", "represented", "antipodal pairs",
        "Dᵢ on a fraction line", "final loss" }, rows = trows, decimals = 4 } },
      summary = { dense_dimensions_per_feature = summary.dense_dimensions_per_feature,
                  sparsest_dimensions_per_feature = summary.sparsest_dimensions_per_feature,
                  half_plateau_levels = count, half_plateau_inverse_density = string.format("%.2f – %.2f", lo or 0, hi or 0),
                  reproduced = summary.reproduced } }
    summary.verdict_text = string.format(
      "TMS FPD verdict: %s. Compared with the paper (D* ≈ 1 dense, sticky at 1/2 over a range of sparsity, below 1/2 "
        .. "when sparse): D* %.2f at the densest level (need > 0.8), %.2f at the sparsest (need < 0.45), D* ≈ 1/2 at %d "
        .. "level(s) (need >= %d; 1/(1−S) %.2f–%.2f)%s",
      summary.reproduced and "reproduced" or "differs", dense.dimensions_per_feature, sparsest.dimensions_per_feature,
      count, levels >= 12 and 2 or 1, lo or 0, hi or 0,
      (summary.reproduced or scale == "full") and ""
        or string.format("; quick scale (n = %d, m = %d, %d levels, %d steps) resolves the 1/2 plateau coarsely: rerun with scale=full before reading this as a miss", n, m, levels, steps))
    toymoe.save_json("summary.json", summary)
    print(summary.verdict_text)
    return summary
  end,
}
