-- Table 1: does a random K-hot router make experts specialize, compared with a Xavier router?
-- Table 1 of "Sparsity and Superposition in Mixture of Experts" (docs/PAPER.md#expert-usage, docs/PAPER.md#table1): does a random K-hot router
-- make experts specialize, i.e. route inputs to the expert that holds their features monosemantically?
-- n = 100, m = 10, E = 10, k = 1, p = 0.1, importance 0.9^{perm} with ONE permutation shared by all models,
-- no load balancing, the vectorized trainer's mean-over-features loss, batch 1024, AdamW 1e-3. N models with a
-- Xavier-normal gate and N with a random K-hot gate (K = 10); W, b Xavier. The K-hot gate is pure: zero, then a 1 at
-- each (expert, feature) of its group, as the authors ran it (their saved output prints initial gates of only 0 and
-- 1). `khot_gate=overlay` writes the ones over a Xavier gate instead (an earlier reading of their code, kept to
-- compare). The router is frozen for k = 1 (no reconstruction gradient reaches it), so routing is whatever the init
-- gave.
-- For every expert: M_e = {i : q_i^(e) < 0.2}; experts grouped by |M_e| ∈ {1, 2, 3, 4} (|M_e| = 0 skipped, ≥ 5
-- counted apart); usage = the fraction of 8192 inputs routed (argmax) to e under three conditions: "unchanged",
-- "clamped" (features of M_e set to 1) and "only feature active" (others 0, M_e set to a common c ~ U[0,1)).
-- Both readings of the base distribution are reported: base = "dense" (p = 1, what the authors' code did — the
-- published numbers, docs/PAPER.md#expert-usage quirk) and base = "training" (p = 0.1, what the paper intends). The default plots and
-- verdicts use the authors' reading, `base=training` switches the headline to the intended one.
--
--   toymoe run scripts/paper/table1_specialization.lua [scale=quick|full] [models=N] [steps=T] [batch=B]
--              [usage_batch=8192] [base=dense|training] [khot_gate=pure|overlay] --out results/table1 --jobs 2
--
-- full  (the published configuration): 100 + 100 models, 10,000 steps, batch 1024 (≈ 5 ms per step here:
--        ≈ 3 core-hours, ≈ 1.5 h with --jobs 2).
-- quick (default): 12 + 12 models, 2000 steps, batch 256 (≈ 70 core-seconds: ≈ 40–55 s with --jobs 2). The router
--        is frozen, so the routing pattern is set at init; 2000 steps of batch 256 form about 7 monosemantic
--        experts per model (smaller batches or fewer steps form too few). Losses ≈ 9e-4, above the paper's 4.6e-4.
--        Single |M_e| groups hold few experts at this N, so the verdicts also use the pool of all experts with
--        1 ≤ |M_e| ≤ 4 and the per-expert "lift" (clamped − unchanged usage), which is far less noisy.
--
-- The shared importance permutation: drawn once from a fixed private generator (a 64-bit LCG seeded with
-- `perm_seed`, default 41, the authors' seed value) at top level, so every worker state holds the same constant
-- and no sweep cell carries it; the models' own inits use each cell's seed.
local scale = toymoe.param("scale", "quick")
assert(scale == "quick" or scale == "full", "scale must be 'quick' or 'full', got " .. tostring(scale))
local full = scale == "full"
local N = toymoe.param("models", full and 100 or 12)
local steps = toymoe.param("steps", full and 10000 or 2000)
local batch = toymoe.param("batch", full and 1024 or 256)
local usage_batch = toymoe.param("usage_batch", 8192)
local headline_base = toymoe.param("base", "dense")
assert(headline_base == "dense" or headline_base == "training", "base must be 'dense' or 'training'")
local khot_gate = toymoe.param("khot_gate", "pure")
assert(khot_gate == "pure" or khot_gate == "overlay", "khot_gate must be 'pure' or 'overlay', got " .. tostring(khot_gate))
local perm_seed = math.tointeger(toymoe.param("perm_seed", 41)) or error("perm_seed must be an integer")
local n, m, E, K, p = 100, 10, 10, 10, 0.1
local M = toymoe.metrics
local MAXG = 4
local min_group = toymoe.param("min_group", 3)

-- The shared permutation of 0.9^i (Fisher–Yates with a private LCG: deterministic, independent of --seed).
local importance
do
  local state = perm_seed
  local function rand_int(k) -- 1..k
    state = state * 6364136223846793005 + 1442695040888963407
    return ((state >> 33) % k) + 1
  end
  local perm = {}
  for i = 1, n do perm[i] = i - 1 end
  for i = n, 2, -1 do
    local j = rand_int(i)
    perm[i], perm[j] = perm[j], perm[i]
  end
  importance = {}
  for i = 1, n do importance[i] = 0.9 ^ perm[i] end
end
local data = toymoe.data{ feature_probability = p, importance = importance }

local inits = { "xavier", "khot" }
local init_label = { xavier = "Xavier", khot = "K-hot" }
local conditions = { "unchanged", "clamped", "only_feature_active" }
local condition_label = { unchanged = "Unchanged", clamped = "Clamped to 1",
                          only_feature_active = "Only feature active", lift = "Lift (clamped − unchanged)" }
-- "lift" is derived per expert: how much clamping its monosemantic features raises its usage. It removes the
-- large expert-to-expert spread of a Xavier router's usage on dense inputs, so it is the low-noise statistic.
local stat_conditions = { "unchanged", "clamped", "only_feature_active", "lift" }
local bases = { "dense", "training" }

local cells = {}
for i = 1, N do
  for _, init in ipairs(inits) do cells[#cells + 1] = { init = init, model = i } end
end

local function run(cell, ctx)
  local model = toymoe.model{ n_features = n, n_hidden = m, n_experts = E, n_active_experts = 1,
    init = cell.init == "khot" and { gate = "random_khot", overlay_gate = khot_gate == "overlay" } or nil }
  local r = toymoe.train(model, { data = data, steps = steps, batch_size = batch, loss = "mean", history_every = 100 })
  local out = { final_loss = r.final_loss, size = {} }
  for _, base in ipairs(bases) do
    local u = M.expert_usage(model, { data = data, base = base, batch = usage_batch })
    for _, c in ipairs(conditions) do
      local v = {}
      for e = 1, E do v[e] = u[e][c] or -1 end -- -1: |M_e| = 0 (no clamped/only-feature usage)
      out[base .. "_" .. c] = v
    end
    for e = 1, E do out.size[e] = #u[e].monosemantic end
  end
  model:free()
  return out
end

local function mean_sd(v)
  local c = #v
  if c == 0 then return 0 / 0, 0 / 0 end
  local s = 0
  for _, x in ipairs(v) do s = s + x end
  local mean = s / c
  local ss = 0
  for _, x in ipairs(v) do ss = ss + (x - mean) ^ 2 end
  return mean, c > 1 and math.sqrt(ss / (c - 1)) or 0
end

-- What the mechanism predicts for a pure K-hot router (frozen: k = 1 gives the gate no reconstruction gradient, and
-- weight decay only scales it, which keeps the argmax). On dense base inputs (x_i ~ U[0,1), p = 1) expert e's logit is
-- the sum of its K features; clamping j of them to 1 (all inside its own group) makes it j + IrwinHall(K − j), while
-- each of the other E − 1 logits is an independent IrwinHall(K). So
--   P(e wins | j) = ∫ f_{K−j}(t) · F_K(t + j)^(E−1) dt,
-- with the Irwin–Hall density f_n and distribution F_n (sums of n uniforms), integrated by Simpson's rule.
-- j = 0 gives 1/E; j = 1..4 give 0.202, 0.362, 0.566, 0.768 for K = E = 10.
local function khot_clamped_prediction(j)
  local function choose(a, b) local c = 1; for i = 1, b do c = c * (a - b + i) / i end; return c end
  local function fact(a) local f = 1; for i = 2, a do f = f * i end; return f end
  local function ih_cdf(nn, x)
    if x <= 0 then return 0 elseif x >= nn then return 1 end
    local acc = 0
    for k = 0, math.floor(x) do acc = acc + (-1) ^ k * choose(nn, k) * (x - k) ^ nn end
    return acc / fact(nn)
  end
  local function ih_pdf(nn, x)
    if x <= 0 or x >= nn then return 0 end
    local acc = 0
    for k = 0, math.floor(x) do acc = acc + (-1) ^ k * choose(nn, k) * (x - k) ^ (nn - 1) end
    return acc / fact(nn - 1)
  end
  local mm = K - j
  if mm == 0 then return ih_cdf(K, j) ^ (E - 1) end
  local S = 2000 -- even
  local h = mm / S
  local acc = 0
  for i = 0, S do
    local t = i * h
    local w = (i == 0 or i == S) and 1 or (i % 2 == 1 and 4 or 2)
    acc = acc + w * ih_pdf(mm, t) * ih_cdf(K, t + j) ^ (E - 1)
  end
  return acc * h / 3
end

local function finite(x) return x == x and x ~= math.huge and x ~= -math.huge end
local function json_num(x) if finite(x) then return x end return nil end

local function finish(rows)
  -- stats[init][base][cond][g] = { all experts' usages }, per_model[...] = { per-model group means }
  local stats, counts, over, losses = {}, {}, {}, {}
  for _, init in ipairs(inits) do
    stats[init], counts[init], over[init], losses[init] = {}, {}, 0, {}
    for g = 1, MAXG do counts[init][g] = 0 end
    for _, base in ipairs(bases) do
      stats[init][base] = {}
      for _, c in ipairs(stat_conditions) do
        stats[init][base][c] = {}
        for g = 1, MAXG + 1 do stats[init][base][c][g] = { experts = {}, models = {} } end -- MAXG + 1: pooled 1..4
      end
    end
  end
  for _, row in ipairs(rows) do
    local init = row.cell.init
    for _, res in ipairs(row.replicates or { row.result }) do
      table.insert(losses[init], res.final_loss)
      for e = 1, E do
        local g = res.size[e]
        if g > MAXG then over[init] = over[init] + 1 elseif g >= 1 then counts[init][g] = counts[init][g] + 1 end
      end
      for _, base in ipairs(bases) do
        for _, c in ipairs(stat_conditions) do
          local acc = {}
          for e = 1, E do
            local g = res.size[e]
            if g >= 1 and g <= MAXG then
              local u = c == "lift" and (res[base .. "_clamped"][e] - res[base .. "_unchanged"][e])
                or res[base .. "_" .. c][e]
              for _, gg in ipairs{ g, MAXG + 1 } do
                table.insert(stats[init][base][c][gg].experts, u)
                acc[gg] = acc[gg] or {}
                table.insert(acc[gg], u)
              end
            end
          end
          for g, list in pairs(acc) do
            table.insert(stats[init][base][c][g].models, (mean_sd(list)))
          end
        end
      end
    end
  end

  -- usage[init][base][cond] = { mean = {g = 1..4}, sd_experts = {...}, sem_models = {...}, experts = {...} }
  local usage = {}
  for _, init in ipairs(inits) do
    usage[init_label[init]] = {}
    for _, base in ipairs(bases) do
      local ub = {}
      for _, c in ipairs(stat_conditions) do
        local t = { mean = {}, sd_over_experts = {}, sem_over_models = {}, experts = {}, models = {} }
        for g = 1, MAXG + 1 do
          local s = stats[init][base][c][g]
          local mean, sd = mean_sd(s.experts)
          local _, msd = mean_sd(s.models)
          t.mean[g], t.sd_over_experts[g] = json_num(mean) or "n/a", json_num(sd) or "n/a"
          t.sem_over_models[g] = (#s.models > 1) and msd / math.sqrt(#s.models) or (#s.models == 1 and 0 or "n/a")
          t.experts[g], t.models[g] = #s.experts, #s.models
        end
        -- the last entry of each list is the pool of all experts with 1 ≤ |M_e| ≤ 4
        t.pooled = { mean = t.mean[MAXG + 1], sd_over_experts = t.sd_over_experts[MAXG + 1],
                     sem_over_models = t.sem_over_models[MAXG + 1], experts = t.experts[MAXG + 1] }
        for _, key in ipairs{ "mean", "sd_over_experts", "sem_over_models", "experts", "models" } do t[key][MAXG + 1] = nil end
        ub[c] = t
      end
      usage[init_label[init]][base] = ub
    end
  end
  local loss = {}
  for _, init in ipairs(inits) do
    local mean, sd = mean_sd(losses[init])
    loss[init_label[init]] = { mean = mean, std = sd, models = #losses[init] }
  end
  local count_tbl = {}
  for _, init in ipairs(inits) do count_tbl[init_label[init]] = { by_size = counts[init], larger_than_4 = over[init] } end

  -- Verdicts (headline base).
  local function val(init, base, c, g)
    local v = usage[init][base][c].mean[g]
    return type(v) == "number" and v or nil
  end
  local verdicts = {}
  for _, base in ipairs(bases) do
    -- Per-group checks use groups holding at least `min_group` experts (smaller groups are single-expert noise).
    local v = { khot_above_baseline = true, khot_above_xavier_by_size = true, groups_compared = 0,
                khot_only_feature_active = {}, xavier_only_feature_active = {}, min_group_experts = min_group }
    local prev, rising = nil, true
    for g = 1, MAXG do
      local big_k = usage["K-hot"][base].clamped.experts[g] >= min_group
      local big_x = usage["Xavier"][base].clamped.experts[g] >= min_group
      local kc, xc = val("K-hot", base, "clamped", g), val("Xavier", base, "clamped", g)
      if kc and big_k then
        if not (kc > 1 / E) then v.khot_above_baseline = false end
        if prev and kc < prev then rising = false end
        prev = kc
      end
      if kc and xc and big_k and big_x then
        v.groups_compared = v.groups_compared + 1
        if not (kc > xc) then v.khot_above_xavier_by_size = false end
      end
      v.khot_only_feature_active[g] = val("K-hot", base, "only_feature_active", g) or "n/a"
      v.xavier_only_feature_active[g] = val("Xavier", base, "only_feature_active", g) or "n/a"
    end
    v.khot_clamped_rises_with_size = rising
    -- Pooled over all experts with 1 ≤ |M_e| ≤ 4 (single groups hold few experts at small N, and a Xavier router's
    -- usage on dense inputs differs a lot from expert to expert).
    local function pooled(init, c) local x = usage[init][base][c].pooled.mean; return type(x) == "number" and x or nil end
    local xp, kp = pooled("Xavier", "clamped"), pooled("K-hot", "clamped")
    local xl, kl = pooled("Xavier", "lift"), pooled("K-hot", "lift")
    v.xavier_clamped_pooled, v.khot_clamped_pooled = xp or "n/a", kp or "n/a"
    v.xavier_lift_pooled, v.khot_lift_pooled = xl or "n/a", kl or "n/a"
    v.khot_only_feature_active_pooled = pooled("K-hot", "only_feature_active") or "n/a"
    v.xavier_only_feature_active_pooled = pooled("Xavier", "only_feature_active") or "n/a"
    v.xavier_near_baseline = xp ~= nil and xp < 0.2
    v.khot_pooled_above_xavier_pooled = xp ~= nil and kp ~= nil and kp > xp
    v.khot_lift_above_xavier_lift = xl ~= nil and kl ~= nil and kl > xl
    v.claim_reproduced = v.khot_above_baseline and v.khot_pooled_above_xavier_pooled and v.khot_lift_above_xavier_lift
      and v.xavier_near_baseline and v.khot_clamped_rises_with_size
    verdicts[base] = v
  end
  verdicts.more_khot_experts_with_monosemantic_features =
    (counts.khot[1] + counts.khot[2] + counts.khot[3] + counts.khot[4]) >
    (counts.xavier[1] + counts.xavier[2] + counts.xavier[3] + counts.xavier[4])
  -- The claim is that the two inits cost the same, not the level (see `paper.final_loss` below): the difference of
  -- the means is compared with its standard error (Welch) and with the means themselves. "Same" = within 3 s.e., or
  -- within 5 % of the Xavier mean when the s.e. is tiny (many models).
  do
    local lx, lk = loss.Xavier, loss["K-hot"]
    local diff = lk.mean - lx.mean
    local se = math.sqrt(lx.std ^ 2 / math.max(lx.models, 1) + lk.std ^ 2 / math.max(lk.models, 1))
    verdicts.loss_difference = { khot_minus_xavier = diff, standard_error = se,
                                 relative = lx.mean > 0 and diff / lx.mean or 0 / 0 }
    verdicts.no_loss_cost = math.abs(diff) <= math.max(3 * se, 0.05 * lx.mean)
  end
  -- Issue-level claims of the corrected Table 1 (pure K-hot gate): K-hot clamped usage rises with |M_e| and is above
  -- Xavier's at every size that both inits populate; Xavier's pooled clamped usage stays near 1/E.
  do
    local v = verdicts[headline_base]
    v.khot_clamped_above_xavier_every_size = v.khot_above_xavier_by_size and v.groups_compared > 0
  end
  -- Dense-base clamped usage of a pure K-hot router against the frozen-router prediction, per |M_e| (groups with at
  -- least `min_group` experts). A K-hot gate over a Xavier gate (`khot_gate=overlay`) lands well below it.
  do
    local pred, ok, gaps = {}, true, {}
    for g = 1, MAXG do
      pred[g] = khot_clamped_prediction(g)
      local kc = val("K-hot", "dense", "clamped", g)
      if kc and usage["K-hot"].dense.clamped.experts[g] >= min_group then
        gaps[g] = kc - pred[g]
        if math.abs(kc - pred[g]) > 0.05 then ok = false end
      else
        gaps[g] = "n/a"
      end
    end
    verdicts.khot_dense_clamped_prediction = pred
    verdicts.khot_dense_clamped_minus_prediction = gaps
    verdicts.khot_matches_frozen_router_prediction = ok
  end

  local reductions = full and "none (published configuration)" or string.format(
    "%d + %d models instead of 100 + 100, %d steps instead of 10,000, batch %d instead of 1024", N, N, steps, batch)
  local summary = {
    table = "Table 1", scale = scale, models_per_init = N, steps = steps, batch_size = batch, usage_batch = usage_batch,
    reductions = reductions,
    config = { n = n, m = m, E = E, k = 1, K = K, p = p, importance = "0.9^perm, one shared permutation",
               khot_gate = khot_gate == "pure" and "pure (zero, then ones)" or "overlay (ones over a Xavier gate)",
               perm_seed = perm_seed, loss = "mean over features", threshold_q = 0.2 },
    shared_importance = importance,
    baseline = 1 / E,
    counts = count_tbl,
    usage = usage,
    usage_note = "mean over experts of each group; sd_over_experts; sem_over_models = sd of per-model group means / sqrt(models). "
      .. "base 'dense' = the authors' code (inputs drawn with p = 1, docs/PAPER.md#expert-usage quirk), 'training' = p = 0.1 (intended)",
    final_loss = loss,
    headline_base = headline_base,
    paper = {
      final_loss = { Xavier = { mean = 4.62e-4, std = 2.2e-5 }, ["K-hot"] = { mean = 4.62e-4, std = 2.1e-5 },
                     note = "the published 4.6e-4 comes from the authors' run on Apple 'mps'; their own vectorized trainer "
                       .. "re-run on CPU with the published configuration gives 7e-4 to 1.0e-3 (three Xavier models). "
                       .. "The claim to test is that both inits cost the same, not the level." },
      authors_code_on_cpu_final_loss = { 7e-4, 8e-4, 1.0e-3 },
      clamped_dense_base = "Xavier near or below 0.10 for every |M_e|; K-hot above 0.10 and rising with |M_e| (old ES saved output)",
      only_feature_active = "K-hot ≈ 0.67–1.0 ('up to 100% routing accuracy', [R]); Xavier not saved",
      counts = "K-hot gives more experts with |M_e| = 1, 2, 3 than Xavier",
    },
    verdicts = verdicts,
    notes = {
      "Clamped usage with the dense base is dominated, for Xavier, by how unbalanced a Xavier router is on dense inputs "
        .. "(some experts take ~half of them); 'lift' (clamped − unchanged, per expert) removes that and is the low-noise comparison.",
      string.format("Only-feature-active usage for Xavier is %s pooled here, not ≈ 1/E as docs/PAPER.md#table1 guessed [I]: a Xavier expert's "
        .. "monosemantic features tend to be the ones whose lone activation routes to it (the frozen router decides which "
        .. "expert trains on a feature). K-hot reaches ≈ 1 because the expert's own logit is then the only nonzero one.",
        type(usage.Xavier.dense.only_feature_active.pooled.mean) == "number"
          and string.format("%.2f", usage.Xavier.dense.only_feature_active.pooled.mean) or "n/a"),
      "Usage groups follow the authors: mean over experts with 1 ≤ |M_e| ≤ 4 (|M_e| = 0 skipped; > 4 counted in counts.larger_than_4).",
    },
  }
  toymoe.save_json("summary.json", summary)

  -- Plots: grouped bars per condition and base; counts.
  local groups = {}
  for g = 1, MAXG do groups[g] = "|M_e| = " .. g end
  local colors = { xavier = "#1f77b4", khot = "#ff7f0e" }
  local figures = {}
  local function nanify(v) if type(v) == "number" then return v end return 0 / 0 end
  local order_bases = headline_base == "dense" and { "dense", "training" } or { "training", "dense" }
  for _, base in ipairs(order_bases) do
    for _, c in ipairs(stat_conditions) do
      local series = {}
      for _, init in ipairs(inits) do
        local t = usage[init_label[init]][base][c]
        local vals, errs = {}, {}
        for g = 1, MAXG do vals[g] = nanify(t.mean[g]); errs[g] = nanify(t.sem_over_models[g]) end
        series[#series + 1] = { label = init_label[init], values = vals, errors = errs, color = colors[init] }
      end
      local file = string.format("usage_%s_%s.svg", base, c)
      toymoe.plot.grouped_bars{
        file = file,
        title = string.format("%s, %s base", condition_label[c], base == "dense" and "p = 1 (authors')" or "p = 0.1"),
        footnote = string.format("mean over experts; error bars: s.e.m. over models (%d + %d)", N, N),
        groups = groups, series = series,
        x_label = "number of monosemantic features |M_e|",
        y_label = c == "lift" and "usage increase" or "fraction routed to e", y_range = c == "lift" and { -0.1, 1 } or { 0, 1.05 },
        baseline = c == "lift" and { value = 0, label = "0" } or { value = 1 / E, label = "1/E" },
        legend = "outside",
      }
      figures[#figures + 1] = { heading = string.format("%s — %s base", condition_label[c],
        base == "dense" and "dense (p = 1, authors' code)" or "training (p = 0.1, intended)"), file = file,
        caption = c == "clamped" and base == "dense" and "the condition of the published table" or nil }
    end
  end
  local cseries = {}
  for _, init in ipairs(inits) do
    local v = {}
    for g = 1, MAXG do v[g] = counts[init][g] end
    cseries[#cseries + 1] = { label = init_label[init], values = v, color = colors[init] }
  end
  toymoe.plot.grouped_bars{ file = "counts.svg", title = "Experts per number of monosemantic features",
    footnote = string.format("over %d models per init (E = %d experts each)", N, E),
    groups = groups, series = cseries, x_label = "|M_e|", y_label = "experts", legend = "top_right" }
  table.insert(figures, 1, { heading = "Counts", file = "counts.svg", caption = "experts with |M_e| = 0 skipped" })

  -- HTML tables (one per base): rows = init × |M_e|.
  local tables = {}
  for _, base in ipairs(order_bases) do
    local header = { "init", "|M_e|", "experts", "unchanged", "clamped", "only feature active" }
    local trows = {}
    for _, init in ipairs(inits) do
      for g = 1, MAXG do
        local r = { init_label[init], g, counts[init][g] }
        for _, c in ipairs(conditions) do
          local t = usage[init_label[init]][base][c]
          if type(t.mean[g]) == "number" then
            r[#r + 1] = string.format("%.3f ± %.3f", t.mean[g], type(t.sem_over_models[g]) == "number" and t.sem_over_models[g] or 0)
          else
            r[#r + 1] = "—"
          end
        end
        trows[#trows + 1] = r
      end
    end
    local caption = string.format("Table 1, %s base: mean usage ± s.e.m. over models", base == "dense" and "dense (p = 1, authors')" or "training (p = 0.1)")
    toymoe.plot.table_html{ file = string.format("table1_%s.html", base), header = header, rows = trows, caption = caption }
    tables[#tables + 1] = { caption = caption, header = header, rows = trows }
  end
  tables[#tables + 1] = { caption = "Final loss (mean over features, last minibatch). Paper: the authors' run on Apple 'mps'; "
      .. "their own trainer on CPU gives 7e-4 to 1.0e-3 (three Xavier models). The claim is that both inits cost the same.",
    header = { "init", "mean", "std", "models", "paper (mps)", "authors' code on CPU" },
    rows = { { "Xavier", loss.Xavier.mean, loss.Xavier.std, loss.Xavier.models, "4.62e-4 ± 2.2e-5", "7e-4 – 1.0e-3" },
             { "K-hot", loss["K-hot"].mean, loss["K-hot"].std, loss["K-hot"].models, "4.62e-4 ± 2.1e-5", "not run" } }, decimals = 6 }

  local hv = verdicts[headline_base]
  local function fmt(init, c, g)
    local v = val(init, headline_base, c, g)
    return v and string.format("%.2f", v) or "–"
  end
  local function fmt_number(v) return (type(v) == "number" and v == v) and string.format("%.2f", v) or "–" end
  local line = string.format(
    "Table 1 verdict (%s base, %s K-hot gate): clamped usage pooled K-hot %s vs Xavier %s; by |M_e| K-hot %s/%s/%s/%s (a frozen pure K-hot router predicts %.2f/%.2f/%.2f/%.2f on dense inputs) vs Xavier %s/%s/%s/%s for |M_e| = 1..4 (1/E = 0.10); only-feature-active K-hot %s/%s/%s/%s; loss Xavier %.2e, K-hot %.2e (%s) — %s",
    -- (a pooled mean is missing when no expert has 1-4 monosemantic features: "–", not "-nan")
    headline_base, khot_gate, fmt_number(usage["K-hot"][headline_base].clamped.pooled.mean),
    fmt_number(usage["Xavier"][headline_base].clamped.pooled.mean),
    fmt("K-hot", "clamped", 1), fmt("K-hot", "clamped", 2), fmt("K-hot", "clamped", 3), fmt("K-hot", "clamped", 4),
    verdicts.khot_dense_clamped_prediction[1], verdicts.khot_dense_clamped_prediction[2],
    verdicts.khot_dense_clamped_prediction[3], verdicts.khot_dense_clamped_prediction[4],
    fmt("Xavier", "clamped", 1), fmt("Xavier", "clamped", 2), fmt("Xavier", "clamped", 3), fmt("Xavier", "clamped", 4),
    fmt("K-hot", "only_feature_active", 1), fmt("K-hot", "only_feature_active", 2), fmt("K-hot", "only_feature_active", 3),
    fmt("K-hot", "only_feature_active", 4), loss.Xavier.mean, loss["K-hot"].mean,
    verdicts.no_loss_cost and "same cost" or "DIFFERENT cost",
    hv.claim_reproduced and "K-hot experts are routed their monosemantic features, Xavier experts are not (reproduced)"
      or (hv.khot_pooled_above_xavier_pooled and hv.khot_lift_above_xavier_lift)
        and "K-hot experts are routed their monosemantic features more than Xavier's, but Xavier's are not near 1/E (partly reproduced)"
      or "NOT reproduced")
  -- Whether a miss can come from the reduced scale (the verdict keys above stay as they are).
  if not hv.claim_reproduced then
    line = line .. (full and "; at the published scale: a real difference"
      or ("; reduced scale (" .. reductions .. "): few experts per |M_e| group, so a miss may come from the reduction: rerun with scale=full"))
  end
  -- The readable verdict joins the machine-readable ones in summary.json (written again, atomically).
  verdicts.verdict_text = line
  toymoe.save_json("summary.json", summary)
  toymoe.plot.report{
    file = "index.html", title = "Table 1: Xavier vs random K-hot router — specialization as monosemantic routing",
    introduction = "n = 100, m = 10, E = 10, k = 1, p = 0.1, importance 0.9^perm (one shared permutation), mean-over-features loss, "
      .. "no load balancing. Usage of expert e under three input conditions, experts grouped by their number of monosemantic "
      .. "features |M_e| (q < 0.2). K-hot gate: " .. khot_gate .. ". The authors' code drew the usage inputs with p = 1 ('dense' base, docs/PAPER.md#expert-usage); the "
      .. "training density p = 0.1 ('training' base) is shown too. Reductions: " .. reductions .. ". " .. line,
    figures = figures, tables = tables, summary = verdicts, summary_heading = "Verdicts",
  }
  print(line)
  return summary
end

toymoe.sweep{ name = "table1", cells = cells, run = run, finish = finish }
