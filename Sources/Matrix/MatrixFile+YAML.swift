import Foundation
import Kernel
import Yams

extension MatrixFile {
    /// The matrix as a matrix file again, with every path absolute and every
    /// kernel named, so the text can be written anywhere and parsed back into
    /// an equal matrix. A nightly writes the matrix it ran this way, with its
    /// git revisions pinned to commits.
    public var yaml: String {
        func scalar(_ text: String) -> Node { Node(text) }
        func list(_ words: [String]) -> Node { .sequence(.init(words.map(scalar))) }
        func mapping(_ pairs: [(String, Node)]) -> Node {
            .mapping(.init(pairs.map { (scalar($0.0), $0.1) }))
        }

        var root: [(String, Node)] = [("name", scalar(name))]
        root.append(("kernels", .sequence(.init(kernels.map { kernel in
            var entry: [(String, Node)] = [("name", scalar(kernel.name)), ("spec", scalar(kernel.spec.description))]
            if let series = kernel.series { entry.append(("series", scalar(series))) }
            if let configs = kernel.configs { entry.append(("configs", .sequence(.init(configs.map(list))))) }
            return mapping(entry)
        }))))
        root.append(("configs", .sequence(.init(configs.map(list)))))
        root.append(("machines", .sequence(.init(machines.map { machine in
            var entry: [(String, Node)] = [("name", scalar(machine.name)), ("profile", scalar(machine.profile))]
            if !machine.cmdline.isEmpty { entry.append(("cmdline", list(machine.cmdline))) }
            return mapping(entry)
        }))))
        root.append(("workloads", .sequence(.init(workloads.map { workload in
            var entry: [(String, Node)] = [("name", scalar(workload.name))]
            if workload.scenarioSets != [[]] {
                entry.append(("scenarios", .sequence(.init(workload.scenarioSets.map(list)))))
            }
            return mapping(entry)
        }))))
        root.append(("repeat", Node(String(repeatCount), Tag(.int))))
        if let parallel { root.append(("parallel", Node(String(parallel), Tag(.int)))) }
        root.append(("connections", list(connections)))
        if let bootTimeout { root.append(("boot-timeout", Node(String(bootTimeout), Tag(.float)))) }
        if let timeout { root.append(("timeout", Node(String(timeout), Tag(.float)))) }
        // Serializing a tree built from strings cannot fail.
        return (try? Yams.serialize(node: mapping(root))) ?? ""
    }

    /// This matrix with the revision of every git kernel replaced by
    /// `commits[tree@revision]`; kernels keep their names, so cells of the
    /// pinned matrix compare with the same cells of other nights.
    public func pinning(_ commits: [String: String]) -> MatrixFile {
        var pinned = self
        pinned.kernels = kernels.map { kernel in
            guard case .git(let tree, let revision) = kernel.spec, let commit = commits["\(tree)@\(revision)"] else {
                return kernel
            }
            var copy = kernel
            copy.spec = .git(tree: tree, revision: commit)
            return copy
        }
        return pinned
    }
}
