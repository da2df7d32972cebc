-- Toy Models of Superposition: phase diagram of 2 features in 1 dimension over density and relative importance.
-- "Toy Models of Superposition" (Elhage et al. 2022) phase diagram for n = 2 features, m = 1 hidden dimension
-- (docs/PAPER.md#tms). Feature 1 has importance 1, feature 2 importance r (log-spaced 0.1…10); both have density s
-- (log-spaced 1…0.01). Per cell several models are trained and the lowest final loss is kept. Each cell is
-- classified from the trained W (2×1): feature 2 not represented / antipodal with feature 1 / dedicated (feature 1
-- dropped), and compared with the closed-form "toy model of the toy model": dropping a feature of importance I
-- costs I·(s/3 − s²/4), an antipodal pair costs (I₁ + I₂)·s²/6, so antipodal wins iff s < 4r/(2 + 5r) (r ≤ 1) or
-- s < 4/(5 + 2r) (r ≥ 1). Trained models can beat the candidates slightly near the boundary (free norms and
-- biases), so agreement is measured on the cells that the closed-form boundary does not cross.
--
-- TMS setup: x̂ = ReLU(WᵀWx + b), x_i = 0 with probability 1 − s else U[0,1), importance-weighted squared error
-- averaged over batch and features ("mean"), AdamW lr 1e-3, wd 0.01, batch 1024, Xavier W, b = 0.
--
--   toymoe run scripts/tms/phase_2x1.lua [scale=quick|full] [grid=G] [models=K] [steps=N] --out results/tms_phase --jobs 2
--
-- quick (default): 8 × 8 grid, 2 models per cell, 2500 steps: 128 models, about 20–25 s with --jobs 2.
-- full: 20 × 20 grid, 10 models per cell, 10,000 steps: 4000 models (roughly 15 min with --jobs 2).
local scale = toymoe.param("scale", "quick")
assert(scale == "quick" or scale == "full", "scale must be 'quick' or 'full', got " .. tostring(scale))
local full = scale == "full"
local grid = toymoe.param("grid", full and 20 or 8)
local models = toymoe.param("models", full and 10 or 2)
local steps = toymoe.param("steps", full and 10000 or 2500)
local batch = toymoe.param("batch", 1024)
local R_VALS = toymoe.geomspace(0.1, 10, grid)
local S_VALS = toymoe.geomspace(0.01, 1, grid) -- row 1 = sparsest (drawn at the bottom)

-- Short names: the categories legend takes its width from the panel (long names squeeze the cells to nothing).
local CLASS_NAMES = { "not represented", "antipodal", "dedicated", "other" }
-- Reader-facing text numbers the features from 0 like every file and plot (feature 0: importance 1; feature 1:
-- importance r); the TMS paper's x₁, x₂ are our features 0 and 1.
local CLASS_DESCRIPTIONS = { "feature 1 not represented (feature 0 dedicated)", "antipodal pair (0, 1)",
                             "feature 1 dedicated (feature 0 dropped)", "other (both same sign, or nothing)" }

-- Closed form: costs of the three candidates; 1 = drop feature 2, 2 = antipodal, 3 = drop feature 1.
local function closed_form(s, r)
  local drop = s / 3 - s * s / 4
  local costs = { r * drop, (1 + r) * s * s / 6, drop }
  local best = 1
  for k = 2, 3 do if costs[k] < costs[best] then best = k end end
  return best, costs
end

-- Class of a trained W (2×1).
local function classify(W)
  local w1, w2 = W[1][1], W[2][1]
  local a1, a2 = math.abs(w1), math.abs(w2)
  local mx = math.max(a1, a2)
  if mx < 0.1 then return 4 end
  local rep1, rep2 = a1 >= 0.5 * mx, a2 >= 0.5 * mx
  if rep1 and rep2 then return (w1 * w2 < 0) and 2 or 4 end
  if rep1 then return 1 end
  return 3
end

local cells = {}
for a, s in ipairs(S_VALS) do
  for b, r in ipairs(R_VALS) do cells[#cells + 1] = { s = s, r = r, row = a, column = b } end
end

local function log10(x) return math.log(x, 10) end

toymoe.sweep{
  name = "tms_phase_2x1",
  cells = cells,
  order = { "row", "column", "s", "r" },
  replicates = models,
  select = { minimize = "final_loss" },
  run = function(cell)
    local model <close> = toymoe.model{ n_features = 2, n_hidden = 1, init = { W = "xavier", b_final = "zero" } }
    local data = toymoe.data{ feature_probability = cell.s, importance = { 1, cell.r } }
    local res = toymoe.train(model, { data = data, steps = steps, batch_size = batch, loss = "mean", history_every = steps })
    local W = model:W(1)
    return { final_loss = res.final_loss, w1 = W[1][1], w2 = W[2][1], b = model:get("b_final")[1], class = classify(W) }
  end,
  finish = function(rows)
    local trained, theory = {}, {}
    for a = 1, #S_VALS do trained[a], theory[a] = {}, {} end
    local agree, away, agree_all = 0, 0, 0
    local per_class = { { 0, 0 }, { 0, 0 }, { 0, 0 } }
    local ls, lr = log10(S_VALS[2] / S_VALS[1]) / 2, log10(R_VALS[2] / R_VALS[1]) / 2
    for _, row in ipairs(rows) do
      local c = row.cell
      local t = row.result.class
      local cf = closed_form(c.s, c.r)
      trained[c.row][c.column] = t
      theory[c.row][c.column] = cf
      if t == cf then agree_all = agree_all + 1 end
      -- "Away from the boundary": the closed-form winner is the same over the whole cell (corners and edge midpoints).
      local uniform = true
      for _, ds in ipairs({ -1, 0, 1 }) do
        for _, dr in ipairs({ -1, 0, 1 }) do
          if closed_form(c.s * 10 ^ (ds * ls), c.r * 10 ^ (dr * lr)) ~= cf then uniform = false end
        end
      end
      if uniform then
        away = away + 1
        per_class[cf][2] = per_class[cf][2] + 1
        if t == cf then
          agree = agree + 1
          per_class[cf][1] = per_class[cf][1] + 1
        end
      end
    end
    local xs, ys = {}, {}
    for b, r in ipairs(R_VALS) do xs[b] = log10(r) end
    for a, s in ipairs(S_VALS) do ys[a] = log10(s) end
    toymoe.plot.categories{
      file = "phase_2x1.svg", title = string.format("TMS phase diagram, n = 2, m = 1 (%d models/cell, %d steps)", models, steps),
      class_names = CLASS_NAMES, x_values = xs, y_values = ys, x_label = "log₁₀ r (importance of feature 1)",
      y_label = "log₁₀ density s", legend_title = "feature 1", columns = 2, panel_size = { 420, 340 },
      panels = { { title = "trained (lowest loss per cell)", classes = trained,
                   footnote = string.format("agreement away from the boundary: %d/%d", agree, away) },
                 { title = "closed form", classes = theory, footnote = "antipodal iff s < 4r/(2+5r) (r ≤ 1), s < 4/(5+2r) (r ≥ 1)" } },
    }
    local fraction = away > 0 and agree / away or 0 / 0
    local by_class = {}
    for k = 1, 3 do
      by_class[CLASS_DESCRIPTIONS[k]] = { agree = per_class[k][1], cells = per_class[k][2] }
    end
    local summary = {
      figure = "TMS phase diagram n=2, m=1", scale = scale, grid = grid, models_per_cell = models, steps = steps,
      batch_size = batch, r_values = R_VALS, density_values = S_VALS,
      cells = #rows, cells_away_from_boundary = away, agreement_away_from_boundary = fraction,
      agreement_all_cells = agree_all / #rows, agreement_by_class = by_class,
      trained_classes = trained, closed_form_classes = theory, class_names = CLASS_DESCRIPTIONS,
      paper = "Elhage et al. 2022: trained diagram matches the closed-form one; antipodal region at low density, boundary s = 4/7 at r = 1",
      verdict = fraction >= 0.8,
    }
    toymoe.save_json("summary.json", summary)
    toymoe.plot.report{
      file = "index.html", title = "TMS phase diagram: 2 features in 1 dimension",
      introduction = "Feature 0 importance 1, feature 1 importance r (0-based, like the files; the TMS paper's x₁, x₂); both "
        .. "with density s. Left: the class of the lowest-loss trained model per cell (from the signs and norms of W); right: "
        .. "the closed-form winner among drop feature 1 / antipodal pair / drop feature 0 (docs/PAPER.md#tms).",
      figures = { { heading = "Trained vs closed form", file = "phase_2x1.svg",
                    caption = string.format("Agreement on the %d cells not crossed by the closed-form boundary: %.0f%%", away, 100 * fraction) } },
      summary = { cells = #rows, cells_away_from_boundary = away, agreement_away_from_boundary = fraction,
                  agreement_all_cells = agree_all / #rows, verdict = summary.verdict },
    }
    summary.verdict_text = string.format(
      "TMS 2x1 phase verdict: %s. Compared the trained diagram with the closed form (the paper: they match): same class in "
        .. "%d of %d cells away from the boundary (%.0f%%, need 80%%), %d of %d overall%s",
      summary.verdict and "reproduced" or "differs", agree, away, 100 * fraction, agree_all, #rows,
      (summary.verdict or scale == "full") and ""
        or string.format("; quick scale (%d model(s) per cell, %d steps) leaves some cells in a worse local minimum: rerun with scale=full before reading this as a miss", models, steps))
    toymoe.save_json("summary.json", summary)
    print(summary.verdict_text)
    return summary
  end,
}
