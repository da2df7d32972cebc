import ArgumentParser
import Foundation
import ToyMoELua

/// `toymoe list`: the bundled scripts, each with its purpose and its parameters.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the bundled scripts (run them by name from any directory: toymoe run paper/fig2_moe).",
        discussion: """
            One line per script: its name as `toymoe run` accepts it, its purpose (the script's first comment
            line), and its parameters with their defaults as written in the script (`toymoe.param` calls; set them
            as KEY=VALUE). The scripts are found in $TOYMOE_SCRIPTS, else in the scripts/ directory of the checkout
            toymoe was built from.
            """)

    func run() throws {
        let entries: [BundledScripts.Entry]
        do {
            entries = try BundledScripts.list()
        } catch let error as ScriptRunError {
            FileHandle.standardError.write(Data("toymoe list: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
        let width = entries.map(\.name.count).max() ?? 0
        for e in entries {
            var line = e.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + (e.purpose ?? "(no purpose line)")
            if !e.params.isEmpty {
                line += "  [params: " + e.params.map { "\($0.name)=\($0.defaultExpression)" }.joined(separator: ", ") + "]"
            }
            print(line)
        }
    }
}
