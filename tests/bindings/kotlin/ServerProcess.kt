// The real `companion-server` binary for the Kotlin tests (bindings and the Android shell's
// models): SQLite in a temporary folder, a free loopback port, the virtual CIE's test CA
// trusted; SERVER_BIN and CARD_CA from the environment (scripts/bindings-test.sh).

import java.io.File
import java.net.ServerSocket
import java.nio.file.Files

/** The server binary on a free loopback port; its key pin read from the file it writes. */
class ServerProcess(vararg extra: String) : AutoCloseable {
    private val dir: File = Files.createTempDirectory("cie-kt-server").toFile()
    val origin: String
    val pin: String
    private val proc: Process

    init {
        val port = ServerSocket(0).use { it.localPort }
        origin = "https://127.0.0.1:$port"
        val pinFile = File(dir, "pin")
        val log = File(dir, "server.log")
        proc = ProcessBuilder(
            listOf(
                System.getenv("SERVER_BIN") ?: error("SERVER_BIN is not set"),
                "--listen", "127.0.0.1:$port",
                "--database", "sqlite:" + File(dir, "db.sqlite").path,
                "--card-ca", System.getenv("CARD_CA") ?: error("CARD_CA is not set"),
                "--pin-file", pinFile.path,
            ) + extra,
        ).redirectErrorStream(true).redirectOutput(log).start()
        val deadline = System.currentTimeMillis() + 30_000
        while (!(pinFile.exists() && pinFile.readText().isNotBlank())) {
            check(proc.isAlive && System.currentTimeMillis() < deadline) { "server did not start:\n" + log.readText() }
            Thread.sleep(50)
        }
        pin = pinFile.readText().trim()
    }

    override fun close() {
        proc.destroy()
        proc.waitFor()
        dir.deleteRecursively()
    }
}
