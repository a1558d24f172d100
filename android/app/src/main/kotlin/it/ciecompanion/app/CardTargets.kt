// Reader mode delivers every tag to the activity; the screen waiting for a card (login,
// desktop approval, enrolment) registers here while it is shown.
package it.ciecompanion.app

import androidx.compose.runtime.Composable
import androidx.compose.runtime.DisposableEffect
import androidx.compose.runtime.staticCompositionLocalOf
import it.ciecompanion.android.card.CardTap
import it.ciecompanion.android.nfc.IsoDepTransport
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.launch

/** A view model that can use a tapped card now. */
fun interface CardTarget {
    fun onTag(transport: IsoDepTransport)
}

class CardTargets {
    @Volatile
    var current: CardTarget? = null

    /** From `onTagDiscovered` (a binder thread). A tag nobody waits for is closed. */
    fun deliver(transport: IsoDepTransport) {
        val target = current
        if (target != null) target.onTag(transport) else transport.close()
    }
}

val LocalCardTargets = staticCompositionLocalOf { CardTargets() }

/** While this is composed, taps go to [target]. */
@Composable
fun ListenForCard(target: CardTarget) {
    val targets = LocalCardTargets.current
    DisposableEffect(target) {
        targets.current = target
        onDispose { if (targets.current === target) targets.current = null }
    }
}

/** Run [tap]'s operation over [transport] in [scope]; the link is closed afterwards. */
fun <T> CoroutineScope.runTap(tap: CardTap<T>, transport: IsoDepTransport) {
    launch {
        try {
            tap.onCard(transport)
        } finally {
            transport.close()
        }
    }
}
