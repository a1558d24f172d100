// The phone-tap CIE login screen: a CardTap over the core's CardLoginSession.
package it.ciecompanion.android.login

import it.ciecompanion.android.card.CardTap
import it.ciecompanion.core.CardLoginSession
import it.ciecompanion.core.Language

/** Who logged in, as the screen shows it. */
data class LoggedIn(val name: String, val codiceFiscale: String, val level: Int, val pairedNow: Boolean)

/** The login's PIN-and-tap; its `state` ends in `Done(LoggedIn)`. */
fun cardLogin(session: CardLoginSession, language: Language): CardTap<LoggedIn> = CardTap(
    language = language,
    tap = { transport, pin, progress ->
        val r = session.tap(transport, pin, progress)
        LoggedIn(
            name = "${r.identity.givenName} ${r.identity.surname}",
            codiceFiscale = r.identity.codiceFiscale,
            level = r.level.toInt(),
            pairedNow = r.pairedNow,
        )
    },
    confirm = session::confirmLastTry,
)
