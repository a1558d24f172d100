// The phone-tap login screen: renders the login's TapState, nothing more. Texts from resources
// (values = English, values-it = Italian); the core's own messages come in Italian.
package it.ciecompanion.app

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import it.ciecompanion.android.card.PinChangeKind

@Composable
fun LoginScreen(vm: LoginViewModel, onPinChange: (PinChangeKind) -> Unit) {
    val state by vm.state.collectAsStateWithLifecycle()
    ListenForCard(vm)
    Column(modifier = Modifier.fillMaxSize().padding(24.dp)) {
        Text(stringResource(R.string.login_title), style = MaterialTheme.typography.headlineSmall)
        CardTapContent(state, vm::submitPin, vm::confirmLastTry, vm::cancelLastTry) { done ->
            Text(stringResource(R.string.logged_in, done.name, done.level), style = MaterialTheme.typography.titleLarge)
        }
        // A blocked PIN is unblocked here, with the PUK; the PIN can be changed any time.
        Row(horizontalArrangement = Arrangement.spacedBy(12.dp)) {
            TextButton(onClick = { onPinChange(PinChangeKind.UNBLOCK_WITH_PUK) }) { Text(stringResource(R.string.unblock_title)) }
            TextButton(onClick = { onPinChange(PinChangeKind.CHANGE_PIN) }) { Text(stringResource(R.string.change_pin_title)) }
        }
    }
}
