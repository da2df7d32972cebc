import ArgumentParser
import ToyMoEBuildInfo
import ToyMoEIO

/// The `toymoe` command-line tool.
@main
struct ToyMoECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "toymoe",
        abstract: "Toy models of superposition, dense and Mixture-of-Experts: train, script, measure.",
        version: "\(ToyMoEVersion.string) (commit \(ToyMoEBuild.description))",
        subcommands: [RunCommand.self, TrainCommand.self, MergeCommand.self, BenchCommand.self, ListCommand.self])
}
