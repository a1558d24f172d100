// "Sblocca carta" (PUK + new PIN) and "Cambia PIN": a form, then the same tap screens as the
// other card operations. Every rule is the core's (CardPinChange, tested on the JVM in CI);
// this file only lays the fields out and forwards the taps.
package it.ciecompanion.app

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.material3.Button
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.pluralStringResource
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.text.input.KeyboardType
import androidx.compose.ui.text.input.PasswordVisualTransformation
import androidx.compose.ui.unit.dp
import androidx.lifecycle.ViewModel
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import androidx.lifecycle.viewModelScope
import it.ciecompanion.android.card.CardPinChange
import it.ciecompanion.android.card.PinChangeKind
import it.ciecompanion.android.card.TapState
import it.ciecompanion.android.nfc.IsoDepTransport
import it.ciecompanion.core.Language
import it.ciecompanion.core.SecretStore

/** One PIN change; a new one (a new view model key) for each time the screen opens. */
class PinChangeViewModel(kind: PinChangeKind, language: Language, store: SecretStore) : ViewModel(), CardTarget {
    val model = CardPinChange(kind, language, store)

    override fun onTag(transport: IsoDepTransport) {
        viewModelScope.runTap(model.tap, transport)
    }
}

@Composable
fun PinChangeScreen(vm: PinChangeViewModel, onClose: () -> Unit) {
    val state by vm.model.tap.state.collectAsStateWithLifecycle()
    val unblock = vm.model.kind == PinChangeKind.UNBLOCK_WITH_PUK
    ListenForCard(vm)
    Column(modifier = Modifier.fillMaxSize().padding(24.dp), verticalArrangement = Arrangement.spacedBy(16.dp)) {
        Text(
            stringResource(if (unblock) R.string.unblock_title else R.string.change_pin_title),
            style = MaterialTheme.typography.headlineSmall,
        )
        when (val s = state) {
            is TapState.EnterPin -> PinChangeForm(s, unblock, vm.model::submit)
            else -> CardTapContent(
                s,
                onPin = {},
                onConfirmLastTry = vm.model.tap::confirmLastTry,
                onCancelLastTry = vm.model.tap::cancelLastTry,
            ) {
                Text(stringResource(R.string.pin_changed), style = MaterialTheme.typography.titleLarge)
            }
        }
        OutlinedButton(onClick = onClose) { Text(stringResource(R.string.close)) }
    }
}

@Composable
private fun PinChangeForm(s: TapState.EnterPin, unblock: Boolean, submit: (String, String, String) -> Unit) {
    var code by rememberSaveable { mutableStateOf("") }
    var newPin by rememberSaveable { mutableStateOf("") }
    var again by rememberSaveable { mutableStateOf("") }
    s.message?.let { Text(it, color = MaterialTheme.colorScheme.error) }
    s.triesLeft?.let { n ->
        Text(pluralStringResource(R.plurals.tries_left, n, n), color = MaterialTheme.colorScheme.error, style = MaterialTheme.typography.titleMedium)
    }
    if (unblock) Text(stringResource(R.string.puk_where))
    SecretField(code, stringResource(if (unblock) R.string.puk_label else R.string.current_pin_label)) { code = it }
    SecretField(newPin, stringResource(R.string.new_pin_label)) { newPin = it }
    SecretField(again, stringResource(R.string.new_pin_again_label)) { again = it }
    Row(horizontalArrangement = Arrangement.spacedBy(12.dp)) {
        Button(
            enabled = code.length == 8 && newPin.length == 8 && again.length == 8,
            onClick = {
                submit(code, newPin, again)
                code = ""
                newPin = ""
                again = ""
            },
        ) { Text(stringResource(R.string.continue_)) }
    }
}

@Composable
private fun SecretField(value: String, label: String, onChange: (String) -> Unit) {
    OutlinedTextField(
        value = value,
        onValueChange = { v -> onChange(v.filter(Char::isDigit).take(8)) },
        label = { Text(label) },
        visualTransformation = PasswordVisualTransformation(),
        keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.NumberPassword),
    )
}
