import Configuration
import Glibc
import SystemSupport

/// `--config FILE`, shared by every command.
let configFlag = Flag.option("config", "FILE", "YAML configuration file (rules, reference policies, limits, timeouts).")

/// The configuration file's content, or the built-in defaults without one. A bad file
/// stops the program with its line and key (exit status 2).
func loadConfiguration(_ flags: ParsedFlags) throws(CommandExit) -> ConfigurationFile {
    guard let path = flags.string(configFlag.name) else { return ConfigurationFile() }
    do {
        return try ConfigurationFile.load(path: path)
    } catch {
        StandardStream.error.write("error: configuration \(error)\n")
        throw .status(2)
    }
}

/// Unbuffered writes to a standard stream.
struct StandardStream {
    let fd: Int32
    static let output = StandardStream(fd: 1)
    static let error = StandardStream(fd: 2)

    func write(_ text: String) {
        write(Array(text.utf8))
    }

    func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.write(fd, base + offset, raw.count - offset)
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            offset += n
        }
    }
}

/// All of standard input.
func readStandardInput() -> [UInt8] {
    (try? FileContents.read(path: "-")) ?? []
}
