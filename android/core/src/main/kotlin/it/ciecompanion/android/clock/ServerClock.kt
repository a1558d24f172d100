// Countdowns against the server's clock (a code's expiry, a request's deadline): the core
// measures the offset from the server's Date header; a phone whose clock is wrong still
// shows the right seconds.
package it.ciecompanion.android.clock

import it.ciecompanion.core.CompanionClient

class ServerClock(
    private val client: CompanionClient,
    private val deviceNow: () -> Long = { System.currentTimeMillis() / 1000 },
) {
    /** Whole seconds from now until [serverUnix] (server time), 0 once past. */
    fun secondsUntil(serverUnix: ULong): Long {
        val serverNow = deviceNow() + (client.clockOffset()?.offsetSeconds ?: 0L)
        return (serverUnix.toLong() - serverNow).coerceAtLeast(0L)
    }
}
