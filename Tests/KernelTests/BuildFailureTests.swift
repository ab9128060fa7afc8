import XCTest

@testable import Kernel

/// A build that fails because the machine did (a full disk, a removed cache) is
/// not the kernel's BUILD_FAIL.
final class BuildFailureTests: XCTestCase {
    func testAFullDiskInTheLogIsTheMachinesFault() {
        let log = """
              CC      kernel/fork.o
            {standard input}: Assembler messages:
            {standard input}:1234: Fatal error: can't write 12 bytes to section .text of kernel/fork.o: 'No space left on device'
            kernel/fork.c:3210: fatal error: error writing to /tmp/ccAbCdEf.s: No space left on device
            make[2]: *** [scripts/Makefile.build:243: kernel/fork.o] Error 1
            """
        XCTAssertEqual(KernelBuildFailure.machineFault(inLog: log),
                       "{standard input}:1234: Fatal error: can't write 12 bytes to section .text of kernel/fork.o: 'No space left on device'")
        XCTAssertEqual(KernelBuildFailure.machineFault(inLog: "aarch64-linux-gnu-ld: final link failed: Input/output error\n"),
                       "aarch64-linux-gnu-ld: final link failed: Input/output error")
    }

    func testACompilerErrorIsTheKernels() {
        let log = """
              CC      kernel/fork.o
            kernel/fork.c:42:5: error: 'no_such_thing' undeclared (first use in this function)
            make[2]: *** [scripts/Makefile.build:243: kernel/fork.o] Error 1
            """
        XCTAssertNil(KernelBuildFailure.machineFault(inLog: log))
        XCTAssertEqual(KernelBuildFailure.firstError(inLog: log),
                       "kernel/fork.c:42:5: error: 'no_such_thing' undeclared (first use in this function)")
    }
}
