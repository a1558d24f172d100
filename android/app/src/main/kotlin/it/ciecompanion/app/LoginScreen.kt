// The phone-tap login screen: renders the login's TapState, nothing more. Texts from resources
// (values = English, values-it = Italian); the core's own messages come in Italian.
package it.ciecompanion.app

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.material3.Button
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.text.input.KeyboardType
import androidx.compose.ui.text.input.PasswordVisualTransformation
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import it.ciecompanion.android.card.TapState

@Composable
fun LoginScreen(vm: LoginViewModel) {
    val state by vm.state.collectAsStateWithLifecycle()
    Column(
        modifier = Modifier.fillMaxSize().padding(24.dp),
        verticalArrangement = Arrangement.spacedBy(16.dp),
    ) {
        when (val s = state) {
            is TapState.EnterPin -> PinEntry(s, vm::submitPin)
            TapState.WaitForCard -> Text(stringResource(R.string.tap_card))
            is TapState.Reading -> {
                Text(stringResource(R.string.reading_card))
                LinearProgressIndicator(progress = { (s.step.ordinal + s.percent / 100f) / 8f })
                Text(stringResource(R.string.keep_card_still))
            }
            is TapState.TapAgain -> Text(s.messageIt)
            TapState.ConfirmLastTry -> {
                Text(stringResource(R.string.last_try_warning))
                Row(horizontalArrangement = Arrangement.spacedBy(12.dp)) {
                    OutlinedButton(onClick = vm::cancelLastTry) { Text(stringResource(R.string.no)) }
                    Button(onClick = vm::confirmLastTry) { Text(stringResource(R.string.yes_try)) }
                }
            }
            is TapState.Done -> Text(stringResource(R.string.logged_in, s.value.name, s.value.level))
            is TapState.Failed -> Text(s.messageIt)
        }
    }
}

@Composable
private fun PinEntry(s: TapState.EnterPin, submit: (String) -> Unit) {
    var pin by remember { mutableStateOf("") }
    s.messageIt?.let { Text(it) }
    OutlinedTextField(
        value = pin,
        onValueChange = { v -> pin = v.filter(Char::isDigit).take(8) },
        label = { Text(stringResource(R.string.pin_label)) },
        visualTransformation = PasswordVisualTransformation(),
        keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.NumberPassword),
    )
    Button(
        enabled = pin.length == 4 || pin.length == 8,
        onClick = {
            submit(pin)
            pin = ""
        },
    ) { Text(stringResource(R.string.continue_)) }
}
