import ToyMoE

/// A paper configuration of one model for `toymoe train --preset`: model, data and training as the bundled script
/// of that figure trains each of its models (scripts/paper/*.lua, at full scale). Options given on the command line
/// override any of it.
struct TrainPreset: Sendable {
    enum Importance: Sendable, Equatable {
        /// I_i = base^i (i = 0 … n−1).
        case geometric(Double)
        /// base^{π(i)} for a random permutation π drawn from the run's seed.
        case permutedGeometric(Double)
    }

    var name: String
    /// One line for `--help`.
    var summary: String
    var model: ModelConfig
    var featureProbability: Float = 0.1
    var importance: Importance = .geometric(0.7)
    /// Replaces the last feature's importance (Fig. 4's r).
    var lastImportance: Double? = nil
    var training: TrainingConfig
    var gate: TrainCommand.GateInit = .xavier
    var bias: TrainCommand.BiasInit = .xavier

    static func training(steps: Int, batch: Int, loss: LossNormalization, loadBalancing: Bool = false,
                         earlyStop: EarlyStop? = nil) -> TrainingConfig {
        var t = TrainingConfig()
        t.steps = steps
        t.batchSize = batch
        t.learningRate = 1e-3
        t.lossNormalization = loss
        t.loadBalancing = loadBalancing
        t.loadBalancingAlpha = 0.01
        t.earlyStop = earlyStop
        return t
    }

    /// The configuration without `--preset`: Fig. 1's.
    static var standard: TrainPreset { all[0] }

    /// Every preset, in the order `--help` lists them.
    static let all: [TrainPreset] = {
        var list: [TrainPreset] = []
        let sum = training(steps: 10000, batch: 1024, loss: .sumOverFeatures)
        let mean = training(steps: 10000, batch: 1024, loss: .meanOverFeatures)
        list.append(TrainPreset(
            name: "fig1", summary: "dense, n=20, m=6, p=0.1, importance 0.7^i, sum loss, batch 1024",
            model: ModelConfig(featureCount: 20, hiddenCount: 6), training: sum))
        list.append(TrainPreset(
            name: "fig2", summary: "MoE, n=20, E=3 × m=2, k=1, otherwise as fig1",
            model: ModelConfig(featureCount: 20, hiddenCount: 2, expertCount: 3, activeExpertCount: 1), training: sum))
        for (name, e, m, k) in [("dense", 1, 20, 1), ("e4", 4, 5, 1), ("e10", 10, 2, 2), ("e20", 20, 1, 5)] {
            list.append(TrainPreset(
                name: "fig3-\(name)",
                summary: "n=100, E=\(e) × m=\(m), k=\(k), importance 1, mean loss, p=0.1",
                model: ModelConfig(featureCount: 100, hiddenCount: m, expertCount: e, activeExpertCount: k),
                importance: .geometric(1), training: mean))
        }
        for arch in ["211", "212", "311", "312", "313", "321", "322", "323"] {
            let d = arch.map { Int(String($0))! }
            list.append(TrainPreset(
                name: "fig4-\(arch)",
                summary: "n=\(d[0]), m=\(d[1]), E=\(d[2]), k=1, load balancing, mean loss, batch 512, p=0.5",
                model: ModelConfig(featureCount: d[0], hiddenCount: d[1], expertCount: d[2], activeExpertCount: 1),
                featureProbability: 0.5, importance: .geometric(1), lastImportance: 1,
                training: training(steps: 5000, batch: 512, loss: .meanOverFeatures, loadBalancing: true)))
        }
        for gate in [TrainCommand.GateInit.zero, .xavier, .diagonal] {
            list.append(TrainPreset(
                name: "fig5-\(gate.rawValue)",
                summary: "n=2, m=1, E=3, k=1, p=0.5, \(gate.rawValue) router, early stop, batch 100",
                model: ModelConfig(featureCount: 2, hiddenCount: 1, expertCount: 3, activeExpertCount: 1),
                featureProbability: 0.5, importance: .geometric(1),
                training: training(steps: 10000, batch: 100, loss: .sumOverFeatures, earlyStop: EarlyStop()), gate: gate))
        }
        let fig6 = ModelConfig(featureCount: 20, hiddenCount: 5, expertCount: 4, activeExpertCount: 1)
        list.append(TrainPreset(
            name: "fig6a", summary: "n=20, E=4 × m=5, k=1, diagonal router, p=0.09, importance 0.7^i",
            model: fig6, featureProbability: 0.09, training: sum, gate: .diagonal))
        list.append(TrainPreset(
            name: "fig6b", summary: "as fig6a with an ordered K-hot router (K=5), p=0.1",
            model: fig6, training: sum, gate: .orderedKHot))
        list.append(TrainPreset(
            name: "fig6c", summary: "as fig6a with a random K-hot router (K=5), p=0.1, 0.7^{perm}",
            model: fig6, importance: .permutedGeometric(0.7), training: sum, gate: .randomKHot))
        let table1 = ModelConfig(featureCount: 100, hiddenCount: 10, expertCount: 10, activeExpertCount: 1)
        list.append(TrainPreset(
            name: "table1-xavier", summary: "n=100, E=10 × m=10, k=1, p=0.1, 0.9^{perm}, mean loss, Xavier",
            model: table1, importance: .permutedGeometric(0.9), training: mean))
        list.append(TrainPreset(
            name: "table1-khot", summary: "as table1-xavier with a random K-hot router (K=10)",
            model: table1, importance: .permutedGeometric(0.9), training: mean, gate: .randomKHot))
        return list
    }()

    static func named(_ name: String) -> TrainPreset? { all.first { $0.name == name } }
}
