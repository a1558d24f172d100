// "Codici": every saved token with its code and the seconds left (TOTP), "Genera" for HOTP,
// remove; add by scanning an otpauth:// QR or pasting the link. The core computes, parses
// and refuses; the seeds stay in the Keystore-sealed store.
package it.ciecompanion.app

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.Button
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.text.font.FontFamily
import androidx.compose.ui.unit.dp
import androidx.compose.ui.unit.sp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import it.ciecompanion.android.otp.CodeRow
import it.ciecompanion.android.otp.OtpModel
import it.ciecompanion.core.OtpKind
import kotlinx.coroutines.delay

@Composable
fun OtpScreen(model: OtpModel) {
    val state by model.state.collectAsStateWithLifecycle()
    // Recompute every second while the screen is shown.
    LaunchedEffect(model) {
        while (true) {
            model.tick()
            delay(1_000)
        }
    }
    Column(modifier = Modifier.fillMaxSize().padding(24.dp), verticalArrangement = Arrangement.spacedBy(16.dp)) {
        Text(stringResource(R.string.otp_title), style = MaterialTheme.typography.headlineSmall)
        state.message?.let {
            Text(it, color = MaterialTheme.colorScheme.error)
            TextButton(onClick = model::dismiss) { Text(stringResource(R.string.ok)) }
        }
        if (state.scanning) {
            Text(stringResource(R.string.otp_scan))
            QrCamera(model)
            var link by rememberSaveable { mutableStateOf("") }
            OutlinedTextField(value = link, onValueChange = { link = it }, label = { Text(stringResource(R.string.otp_paste)) })
            Row(horizontalArrangement = Arrangement.spacedBy(12.dp)) {
                OutlinedButton(onClick = model::stopScan) { Text(stringResource(R.string.back)) }
                Button(enabled = link.isNotBlank(), onClick = { if (model.add(link)) link = "" }) { Text(stringResource(R.string.otp_add)) }
            }
        } else {
            if (state.rows.isEmpty()) Text(stringResource(R.string.otp_empty))
            LazyColumn(verticalArrangement = Arrangement.spacedBy(16.dp), modifier = Modifier.weight(1f)) {
                items(state.rows, key = { it.token.id }) { row -> TokenRow(row, model) }
            }
            Button(onClick = model::startScan, modifier = Modifier.fillMaxWidth()) { Text(stringResource(R.string.otp_add_qr)) }
        }
    }
}

@Composable
private fun TokenRow(row: CodeRow, model: OtpModel) {
    var hotp by remember { mutableStateOf<String?>(null) }
    var confirmRemove by remember { mutableStateOf(false) }
    val t = row.token
    Column(verticalArrangement = Arrangement.spacedBy(4.dp)) {
        Text(t.issuer ?: t.account, style = MaterialTheme.typography.titleMedium)
        if (t.issuer != null) Text(t.account, style = MaterialTheme.typography.bodySmall)
        Row(verticalAlignment = Alignment.CenterVertically, horizontalArrangement = Arrangement.spacedBy(16.dp)) {
            val kind = t.kind
            if (kind is OtpKind.Totp) {
                Text(row.code.orEmpty(), fontSize = 36.sp, fontFamily = FontFamily.Monospace)
                val left = row.secondsRemaining ?: 0
                CircularProgressIndicator(progress = { left.toFloat() / kind.period.toFloat() })
                Text(stringResource(R.string.otp_seconds_left, left))
            } else {
                Text(hotp ?: "······", fontSize = 36.sp, fontFamily = FontFamily.Monospace)
                // Each press spends a counter value: the next code.
                OutlinedButton(onClick = { hotp = model.next(t.id) }) { Text(stringResource(R.string.otp_next)) }
            }
        }
        TextButton(onClick = { confirmRemove = true }) { Text(stringResource(R.string.otp_remove)) }
    }
    if (confirmRemove) {
        AlertDialog(
            onDismissRequest = { confirmRemove = false },
            text = { Text(stringResource(R.string.otp_remove_confirm, t.issuer ?: t.account)) },
            confirmButton = {
                TextButton(onClick = {
                    confirmRemove = false
                    model.remove(t.id)
                }) { Text(stringResource(R.string.otp_remove)) }
            },
            dismissButton = { TextButton(onClick = { confirmRemove = false }) { Text(stringResource(R.string.no)) } },
        )
    }
}
