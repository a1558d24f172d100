// The app's HTTPS through URLSession, so the core library need not carry its own HTTP and TLS
// stack (docs/mobile.md, size): the Swift twin of the Android shell's PlatformHttps. The core
// builds each request and decides whom to trust; this moves bytes. Each server-trust challenge
// hands the leaf certificate to the core's ServerKeyCheck and cancels the handshake unless it
// accepts, so nothing is sent to a server whose key is not pinned. Redirects are not followed;
// no cache or cookie store is used.
//
// App Transport Security still evaluates the server's certificate unless the app's
// Info.plist names the server under NSExceptionDomains (ios/App/Info.plist.fragment): without
// it a self-signed server, or a phone whose clock is wrong, fails closed.
// TLS sessions are cached per process and a resumed session raises no challenge: this must
// stay the only URLSession in the app that talks to the server.
import Foundation
import cie_core

public final class URLSessionHttps: HttpsTransport, @unchecked Sendable {
    private let check: ServerKeyCheck
    private let session: URLSession

    public init(check: ServerKeyCheck) {
        self.check = check
        let config = URLSessionConfiguration.ephemeral
        config.connectionProxyDictionary = [:]
        config.urlCache = nil
        config.httpCookieStorage = nil
        config.httpShouldSetCookies = false
        // The session's own delegate is a backstop with the same check: should a server-trust
        // challenge reach the session rather than the request's delegate, it still fails closed.
        session = URLSession(configuration: config, delegate: PinDelegate(check: check), delegateQueue: nil)
    }

    public func send(request: HttpsRequest) async throws -> HttpsAnswer {
        guard let url = URL(string: request.url) else {
            throw HttpsFailure.Offline(reason: "not a URL")
        }
        var r = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData,
                           timeoutInterval: Double(request.timeoutMs) / 1000)
        r.httpMethod = request.method == .post ? "POST" : "GET"
        for h in request.headers { r.setValue(h.value, forHTTPHeaderField: h.name) }
        r.httpBody = request.body
        let pin = PinDelegate(check: check)
        do {
            let (data, response) = try await session.data(for: r, delegate: pin)
            guard let http = response as? HTTPURLResponse else {
                throw HttpsFailure.Offline(reason: "not an HTTP answer")
            }
            if UInt64(data.count) > request.maxBody { throw HttpsFailure.TooLarge }
            return HttpsAnswer(status: UInt16(clamping: http.statusCode),
                               date: http.value(forHTTPHeaderField: "Date"), body: data)
        } catch let e as URLError {
            if pin.refused { throw HttpsFailure.ServerKeyRefused }
            switch e.code {
            case .timedOut:
                throw HttpsFailure.Timeout
            case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
                 .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot, .clientCertificateRejected,
                 .clientCertificateRequired, .cancelled:
                throw HttpsFailure.Tls(reason: e.localizedDescription)
            default:
                throw HttpsFailure.Offline(reason: e.localizedDescription)
            }
        }
    }
}

/// One request's TLS trust and redirects (a per-task delegate, iOS 15+).
private final class PinDelegate: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    private let check: ServerKeyCheck
    private let lock = NSLock()
    private var _refused = false
    var refused: Bool { lock.lock(); defer { lock.unlock() }; return _refused }

    init(check: ServerKeyCheck) { self.check = check }

    func urlSession(_ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
                    completionHandler: @escaping (URLSession.AuthChallengeDisposition, URLCredential?) -> Void) {
        guard challenge.protectionSpace.authenticationMethod == NSURLAuthenticationMethodServerTrust else {
            // HTTP authentication and the like: not ours to answer; the status reaches the core.
            completionHandler(.performDefaultHandling, nil)
            return
        }
        guard let trust = challenge.protectionSpace.serverTrust else {
            completionHandler(.cancelAuthenticationChallenge, nil)
            return
        }
        let leaf = (SecTrustCopyCertificateChain(trust) as? [SecCertificate])?.first
        if let leaf, check.accepts(certificate: SecCertificateCopyData(leaf) as Data) {
            // The key is the anchor: accept this trust as it is (the handshake signature
            // still proves the server holds the key).
            completionHandler(.useCredential, URLCredential(trust: trust))
        } else {
            lock.lock(); _refused = true; lock.unlock()
            completionHandler(.cancelAuthenticationChallenge, nil)
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        // A redirect could lead off the core's allow-list: the 3xx goes back to the core.
        completionHandler(nil)
    }
}
