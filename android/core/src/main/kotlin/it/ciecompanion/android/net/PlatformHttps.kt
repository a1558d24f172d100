// The app's HTTPS through the platform (HttpsURLConnection, on every Android and JVM), so the
// core library need not carry its own HTTP and TLS stack (docs/mobile.md, size). The core
// builds each request and decides whom to trust; this class moves bytes. Its TLS trusts
// exactly what the core's ServerKeyCheck accepts — the leaf certificate's key — so neither
// the system's CAs nor a CA the user installed can stand in for our server, and the check
// runs in the handshake, before a byte of the request is sent.
package it.ciecompanion.android.net

import it.ciecompanion.core.HttpsAnswer
import it.ciecompanion.core.HttpsFailure
import it.ciecompanion.core.HttpsMethod
import it.ciecompanion.core.HttpsRequest
import it.ciecompanion.core.HttpsTransport
import it.ciecompanion.core.ServerKeyCheck
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.withContext
import java.io.ByteArrayOutputStream
import java.io.IOException
import java.io.InputStream
import java.net.HttpURLConnection
import java.net.Proxy
import java.net.SocketTimeoutException
import java.net.URL
import java.security.cert.CertificateException
import java.security.cert.X509Certificate
import javax.net.ssl.HostnameVerifier
import javax.net.ssl.HttpsURLConnection
import javax.net.ssl.SSLContext
import javax.net.ssl.SSLException
import javax.net.ssl.SSLSocketFactory
import javax.net.ssl.X509TrustManager

/** Thrown by the trust manager when the core refuses the server's key. */
private class KeyNotPinned : CertificateException("server key not pinned")

class PlatformHttps(private val check: ServerKeyCheck) : HttpsTransport {
    private val trust = object : X509TrustManager {
        override fun checkClientTrusted(chain: Array<X509Certificate>, authType: String) =
            throw CertificateException("no client certificates here")

        override fun checkServerTrusted(chain: Array<X509Certificate>, authType: String) {
            if (chain.isEmpty() || !check.accepts(chain[0].encoded)) throw KeyNotPinned()
        }

        override fun getAcceptedIssuers(): Array<X509Certificate> = emptyArray()
    }

    private val tls: SSLSocketFactory =
        SSLContext.getInstance("TLS").apply { init(null, arrayOf(trust), null) }.socketFactory

    // The key is the trust anchor, not the certificate's names: the "host name" check asks
    // the core about the peer's key once more (an always-true verifier is what Google Play
    // refuses to publish, and this one holds on every connection, reused or not).
    private val pinnedPeer = HostnameVerifier { _, session ->
        runCatching { check.accepts(session.peerCertificates[0].encoded) }.getOrDefault(false)
    }

    override suspend fun send(request: HttpsRequest): HttpsAnswer = withContext(Dispatchers.IO) {
        // No proxy: the core's allow-list names the servers, and no proxy could pass the pin.
        val conn = URL(request.url).openConnection(Proxy.NO_PROXY) as HttpsURLConnection
        conn.sslSocketFactory = tls
        conn.hostnameVerifier = pinnedPeer
        conn.instanceFollowRedirects = false
        conn.useCaches = false
        val timeout = request.timeoutMs.coerceAtMost(Int.MAX_VALUE.toULong()).toInt()
        conn.connectTimeout = timeout
        conn.readTimeout = timeout
        conn.requestMethod = if (request.method == HttpsMethod.POST) "POST" else "GET"
        request.headers.forEach { conn.setRequestProperty(it.name, it.value) }
        // The core gave up (its own time limit, or the flow was cancelled): free the thread.
        val cancel = coroutineContext[Job]?.invokeOnCompletion { conn.disconnect() }
        try {
            request.body?.let { body ->
                conn.doOutput = true
                conn.setFixedLengthStreamingMode(body.size)
                conn.outputStream.use { it.write(body) }
            }
            val status = conn.responseCode
            if (status < 0) throw HttpsFailure.Offline("not an HTTP answer")
            val stream = if (status >= 400) conn.errorStream else conn.inputStream
            val body = stream?.use { readAtMost(it, request.maxBody) } ?: ByteArray(0)
            HttpsAnswer(status.toUShort(), conn.getHeaderField("Date"), body)
        } catch (e: SSLException) {
            throw if (e.causes().any { it is KeyNotPinned }) HttpsFailure.ServerKeyRefused()
            else HttpsFailure.Tls(e.toString())
        } catch (e: SocketTimeoutException) {
            throw HttpsFailure.Timeout()
        } catch (e: IOException) {
            throw HttpsFailure.Offline(e.toString())
        } finally {
            cancel?.dispose()
            conn.disconnect()
        }
    }

    // Not InputStream.readNBytes: Android has it only from API 33 (minSdk is 26).
    private fun readAtMost(input: InputStream, max: ULong): ByteArray {
        val out = ByteArrayOutputStream()
        val buf = ByteArray(8192)
        var total = 0UL
        while (true) {
            val n = input.read(buf)
            if (n < 0) break
            total += n.toULong()
            if (total > max) throw HttpsFailure.TooLarge()
            out.write(buf, 0, n)
        }
        return out.toByteArray()
    }

    private fun Throwable.causes(): Sequence<Throwable> = generateSequence(this) { it.cause }
}
