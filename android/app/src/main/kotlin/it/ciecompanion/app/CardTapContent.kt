// Any PIN-and-tap operation's screen (login, desktop approval, enrolment): renders the
// CardTap's TapState — PIN pad, tries-left warning, "hold the card", progress, tap again,
// the last-try confirmation, a blocked PIN — and [done] at the end. The core's messages come
// in the app's language (the view models pass it).
package it.ciecompanion.app

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.material3.Button
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.res.pluralStringResource
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.text.input.KeyboardType
import androidx.compose.ui.text.input.PasswordVisualTransformation
import androidx.compose.ui.unit.dp
import it.ciecompanion.android.card.TapState
import it.ciecompanion.core.LoginStep

@Composable
fun <T> CardTapContent(
    state: TapState<T>,
    onPin: (String) -> Unit,
    onConfirmLastTry: () -> Unit,
    onCancelLastTry: () -> Unit,
    pinLabel: String = stringResource(R.string.pin_label),
    done: @Composable (T) -> Unit,
) {
    Column(verticalArrangement = Arrangement.spacedBy(16.dp)) {
        when (state) {
            is TapState.EnterPin -> PinEntry(state, pinLabel, onPin)
            TapState.WaitForCard -> Text(stringResource(R.string.tap_card), style = MaterialTheme.typography.titleMedium)
            is TapState.Reading -> {
                Text(stringResource(R.string.reading_card))
                val steps = LoginStep.entries.size
                LinearProgressIndicator(progress = { (state.step.ordinal + state.percent / 100f) / steps })
                Text(stringResource(R.string.keep_card_still))
            }
            is TapState.TapAgain -> Text(state.message)
            is TapState.ConfirmLastTry -> {
                Text(state.message, color = MaterialTheme.colorScheme.error)
                Row(horizontalArrangement = Arrangement.spacedBy(12.dp)) {
                    OutlinedButton(onClick = onCancelLastTry) { Text(stringResource(R.string.no)) }
                    Button(onClick = onConfirmLastTry) { Text(stringResource(R.string.yes_try)) }
                }
            }
            is TapState.Done -> done(state.value)
            is TapState.PinBlocked -> {
                Text(state.message, color = MaterialTheme.colorScheme.error, style = MaterialTheme.typography.titleMedium)
                Text(stringResource(R.string.pin_blocked_help))
            }
            is TapState.Failed -> Text(state.message, color = MaterialTheme.colorScheme.error)
        }
    }
}

@Composable
private fun PinEntry(s: TapState.EnterPin, label: String, submit: (String) -> Unit) {
    var pin by rememberSaveable { mutableStateOf("") }
    s.message?.let { Text(it, color = MaterialTheme.colorScheme.error) }
    s.triesLeft?.let { n ->
        Text(pluralStringResource(R.plurals.tries_left, n, n), color = MaterialTheme.colorScheme.error, style = MaterialTheme.typography.titleMedium)
    }
    OutlinedTextField(
        value = pin,
        onValueChange = { v -> pin = v.filter(Char::isDigit).take(8) },
        label = { Text(label) },
        visualTransformation = PasswordVisualTransformation(),
        keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.NumberPassword),
    )
    Button(
        // 8 digits, or the last 4 on a paired card: the core says which it needs.
        enabled = pin.length == 4 || pin.length == 8,
        onClick = {
            submit(pin)
            pin = ""
        },
    ) { Text(stringResource(R.string.continue_)) }
}
