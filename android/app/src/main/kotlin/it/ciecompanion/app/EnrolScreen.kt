// "Registra questo telefono": the two ways side by side, then the CIE's PIN and tap, or the
// viewfinder and a field for the page's one-time code.
package it.ciecompanion.app

import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.material3.Button
import androidx.compose.material3.CircularProgressIndicator
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
import androidx.compose.ui.res.stringResource
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import it.ciecompanion.android.enrol.CodeEnrolState
import it.ciecompanion.android.enrol.CodeEnrolmentModel

@Composable
fun EnrolScreen(vm: EnrolViewModel) {
    val mode by vm.mode.collectAsStateWithLifecycle()
    ListenForCard(vm)
    ScrollingScreen(R.string.enrol_title) {
        when (val m = mode) {
            EnrolMode.Choose -> {
                Text(stringResource(R.string.enrol_why))
                Button(onClick = vm::withCard, modifier = Modifier.fillMaxWidth()) { Text(stringResource(R.string.enrol_with_card)) }
                Button(onClick = vm::withCode, modifier = Modifier.fillMaxWidth()) { Text(stringResource(R.string.enrol_with_code)) }
                Text(stringResource(R.string.enrol_code_hint), style = MaterialTheme.typography.bodySmall)
            }
            EnrolMode.Starting -> CircularProgressIndicator()
            is EnrolMode.WithCard -> {
                val tap by m.tap.state.collectAsStateWithLifecycle()
                CardTapContent(tap, m.tap::submitPin, m.tap::confirmLastTry, m.tap::cancelLastTry) { device ->
                    Text(stringResource(R.string.enrolled, "${device.identity.givenName} ${device.identity.surname}"))
                }
            }
            is EnrolMode.WithCode -> WithCode(m.model, vm)
            is EnrolMode.Failed -> {
                Text(m.message, color = MaterialTheme.colorScheme.error)
                Button(onClick = vm::back) { Text(stringResource(R.string.try_again)) }
            }
        }
        if (mode != EnrolMode.Choose) OutlinedButton(onClick = vm::back) { Text(stringResource(R.string.back)) }
    }
}

@Composable
private fun WithCode(model: CodeEnrolmentModel, vm: EnrolViewModel) {
    val state by model.state.collectAsStateWithLifecycle()
    when (val s = state) {
        is CodeEnrolState.WaitingForCode -> {
            Text(stringResource(R.string.enrol_scan_code))
            s.message?.let { Text(it, color = MaterialTheme.colorScheme.error) }
            QrCamera(model)
            var typed by rememberSaveable { mutableStateOf("") }
            OutlinedTextField(value = typed, onValueChange = { typed = it }, label = { Text(stringResource(R.string.enrol_code_label)) })
            Button(enabled = typed.isNotBlank(), onClick = { vm.submitCode(typed) }) { Text(stringResource(R.string.continue_)) }
        }
        CodeEnrolState.Enrolling -> CircularProgressIndicator()
        is CodeEnrolState.Done -> Text(
            stringResource(R.string.enrolled, "${s.device.identity.givenName} ${s.device.identity.surname}"),
            style = MaterialTheme.typography.titleMedium,
        )
        is CodeEnrolState.Failed -> {
            Text(s.message, color = MaterialTheme.colorScheme.error)
            Button(onClick = model::retry) { Text(stringResource(R.string.try_again)) }
        }
    }
}
