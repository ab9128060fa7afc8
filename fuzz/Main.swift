// libFuzzer's entry point for Classify.FuzzTargets: one binary for every target,
// the target named by $KHARNESS_FUZZ_TARGET (scripts/fuzz sets it).
import Foundation

let fuzzTarget: String = {
    let name = ProcessInfo.processInfo.environment["KHARNESS_FUZZ_TARGET"] ?? ""
    guard FuzzTargets.names.contains(name) else {
        fputs("fuzz: set KHARNESS_FUZZ_TARGET to one of \(FuzzTargets.names.joined(separator: ", "))\n", stderr)
        exit(2)
    }
    return name
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    FuzzTargets.run(fuzzTarget, bytes)
    return 0
}
