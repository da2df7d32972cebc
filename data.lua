local keep = {} for i = 1, 1e6 do keep[i] = toymoe.data{ n_features = 100000 } end
