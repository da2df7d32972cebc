-- Every bundled experiment of the paper and the TMS classics, one after the other, with an index of verdicts.
-- Every bundled experiment of the paper (and the TMS classics), one after the other, into subdirectories of --out,
-- with an index of their verdicts.
--
--   toymoe run scripts/paper/all.lua [scale=quick|full] --jobs 2 --out results/all
--
-- Each script runs in a fresh Lua state with the same seed, jobs and limits (toymoe.run_script); its own report is
-- <out>/<name>/index.html. With --resume, sweeps that were interrupted continue where they stopped.
local scale = toymoe.param("scale", "quick")
local only = toymoe.param("only", "")        -- e.g. only=fig1_dense,fig5_routing
local experiments = {
  { name = "fig1_dense", script = "fig1_dense.lua", what = "Fig. 1: dense model, superposition baseline" },
  { name = "fig2_moe", script = "fig2_moe.lua", what = "Fig. 2: MoE with the same total width" },
  { name = "fig3_features_per_dim", script = "fig3_features_per_dim.lua", what = "Fig. 3 and Fig. 7: features per dimension and loss vs sparsity" },
  { name = "fig4_phase", script = "fig4_phase.lua", what = "Fig. 4 and the appendix box plot: phase diagrams" },
  { name = "fig5_routing", script = "fig5_routing.lua", what = "Fig. 5: routing regions under three router inits" },
  { name = "fig6_init", script = "fig6_init.lua", what = "Fig. 6: router initialization steers specialization" },
  { name = "table1_specialization", script = "table1_specialization.lua", what = "Table 1: Xavier vs K-hot routers" },
  { name = "tms_intro", script = "../tms/intro.lua", what = "TMS: intro figure" },
  { name = "tms_fpd_sparsity", script = "../tms/fpd_sparsity.lua", what = "TMS: features per dimension vs sparsity" },
  { name = "tms_phase_2x1", script = "../tms/phase_2x1.lua", what = "TMS: 2-feature phase diagram" },
}

-- The scripts report their verdicts under slightly different keys; reduce each to one line.
local function verdict_of(s)
  local v = s.reproduced
  if v == nil then v = s.claim_reproduced end
  if v == nil and type(s.verdicts) == "table" then
    v = s.verdicts.claim_reproduced
    if v == nil and type(s.verdicts.dense) == "table" then v = s.verdicts.dense.claim_reproduced end
  end
  if v == nil then v = s.verdict end
  if type(v) == "table" then
    local parts = {}
    for k, x in pairs(v) do
      if type(x) == "boolean" then parts[#parts + 1] = k .. (x and ": yes" or ": no") end
    end
    table.sort(parts)
    v = table.concat(parts, "; ")
  end
  if type(v) == "boolean" then v = v and "reproduced" or "differs" end
  return v or "see report"
end

-- The readable sentence each script prints last (what was compared, the numbers, whether a miss is expected).
local function verdict_text_of(s)
  if type(s.verdict_text) == "string" then return s.verdict_text end
  if type(s.verdicts) == "table" and type(s.verdicts.verdict_text) == "string" then return s.verdicts.verdict_text end
  if type(s.verdict) == "table" and type(s.verdict.text) == "string" then return s.verdict.text end
  return "see report"
end

local selected = {}
for name in string.gmatch(only, "[^,]+") do selected[name] = true end

local rows, index = {}, {}
for _, e in ipairs(experiments) do
  if only == "" or selected[e.name] then
    print(string.format("== %s (%s)", e.name, e.what))
    local summary = toymoe.run_script{ script = e.script, out = e.name, params = { scale = scale } } or {}
    local verdict = verdict_of(summary)
    local text = verdict_text_of(summary)
    rows[#rows + 1] = { e.name, e.what, verdict, text, e.name .. "/index.html" }
    index[e.name] = { what = e.what, verdict = verdict, verdict_text = text, report = e.name .. "/index.html" }
  end
end

toymoe.save_json("summary.json", { scale = scale, experiments = index })
toymoe.plot.report{
  file = "index.html", title = "ToyMoE: every experiment of the paper (" .. scale .. " scale)",
  introduction = "Each row links to the experiment's own report (open it relative to this page).",
  tables = { { caption = "Experiments", header = { "name", "experiment", "verdict", "what was compared", "report" }, rows = rows } },
}
return { scale = scale, experiments = index }
