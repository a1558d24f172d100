// The computer's side of a desktop QR login for the Kotlin tests: the page's API calls
// with its cookies, over TLS to the test server's self-signed certificate (test only: the
// app pins the server's key; this stand-in for a browser accepts it).
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.security.cert.X509Certificate
import javax.net.ssl.SSLContext
import javax.net.ssl.TrustManager
import javax.net.ssl.X509TrustManager

class DesktopBrowser(private val origin: String) {
    private val http: HttpClient = HttpClient.newBuilder()
        .sslContext(
            SSLContext.getInstance("TLS").apply {
                init(null, arrayOf<TrustManager>(AcceptAll), null)
            },
        )
        .build()

    // Cookies by name, sent back on every call (a browser would honour Path; the server's
    // cookies are all for this origin's API).
    private val cookies = LinkedHashMap<String, String>()

    /** (status, body) of a JSON call. */
    fun call(method: String, path: String, json: String? = null): Pair<Int, String> {
        val req = HttpRequest.newBuilder(URI.create(origin + path))
            .header("Content-Type", "application/json")
            .header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
            .method(method, json?.let { HttpRequest.BodyPublishers.ofString(it) } ?: HttpRequest.BodyPublishers.noBody())
        if (cookies.isNotEmpty()) req.header("Cookie", cookies.entries.joinToString("; ") { "${it.key}=${it.value}" })
        val r = http.send(req.build(), HttpResponse.BodyHandlers.ofString())
        for (c in r.headers().allValues("set-cookie")) {
            val (name, value) = c.substringBefore(';').split('=', limit = 2).let { it[0] to it.getOrElse(1) { "" } }
            cookies[name.trim()] = value.trim()
        }
        return r.statusCode() to r.body()
    }

    private object AcceptAll : X509TrustManager {
        override fun checkClientTrusted(chain: Array<X509Certificate>, authType: String) {}
        override fun checkServerTrusted(chain: Array<X509Certificate>, authType: String) {}
        override fun getAcceptedIssuers(): Array<X509Certificate> = arrayOf()
    }
}

/** A string field of a flat JSON object (test-only; the server's JSON escapes nothing here). */
fun jsonField(body: String, name: String): String =
    Regex("\"$name\"\\s*:\\s*\"([^\"]*)\"").find(body)?.groupValues?.get(1) ?: error("no $name in $body")
