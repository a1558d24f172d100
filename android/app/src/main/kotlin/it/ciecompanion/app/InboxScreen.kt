// "Richieste di accesso": each pending login with who asks, its deadline, the three numbers
// (pick the one the computer shows) and "Nega, non sono stato io", as prominent as them.
package it.ciecompanion.app

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.heightIn
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.Button
import androidx.compose.material3.ButtonDefaults
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import androidx.compose.ui.unit.sp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import it.ciecompanion.android.approvals.InboxState
import it.ciecompanion.core.CompanionClient
import it.ciecompanion.core.PendingApprovalInfo

@Composable
fun InboxScreen(vm: InboxViewModel, client: CompanionClient, holder: String, onForget: () -> Unit) {
    val state by vm.model.state.collectAsStateWithLifecycle()
    Column(modifier = Modifier.fillMaxSize().padding(24.dp), verticalArrangement = Arrangement.spacedBy(16.dp)) {
        Text(stringResource(R.string.inbox_title), style = MaterialTheme.typography.headlineSmall)
        Text(stringResource(R.string.inbox_enrolled_as, holder))
        when (val s = state) {
            InboxState.Loading -> CircularProgressIndicator()
            is InboxState.Items -> {
                if (s.pending.isEmpty()) Text(stringResource(R.string.inbox_empty))
                LazyColumn(verticalArrangement = Arrangement.spacedBy(24.dp), modifier = Modifier.weight(1f)) {
                    items(s.pending, key = { it.requestId }) { item -> Request(item, client, vm) }
                }
                OutlinedButton(onClick = vm::refresh) { Text(stringResource(R.string.refresh)) }
            }
            InboxState.Approved -> Outcome(stringResource(R.string.inbox_approved), vm)
            InboxState.Denied -> Outcome(stringResource(R.string.inbox_denied), vm)
            is InboxState.WrongNumber -> Outcome(s.message, vm)
            is InboxState.Failed -> Outcome(s.message, vm)
        }
        OutlinedButton(onClick = onForget) { Text(stringResource(R.string.forget_phone)) }
    }
}

@Composable
private fun Request(item: PendingApprovalInfo, client: CompanionClient, vm: InboxViewModel) {
    Column(verticalArrangement = Arrangement.spacedBy(12.dp)) {
        LoginContextCard(item.context)
        DecideWithin(rememberCountdown(client, item.expiresAt))
        Text(stringResource(R.string.pick_number))
        Row(horizontalArrangement = Arrangement.spacedBy(12.dp), modifier = Modifier.fillMaxWidth()) {
            // Vec<u8> arrives as a ByteArray: the numbers are unsigned.
            for (n in item.choices.map(Byte::toUByte)) {
                Button(onClick = { vm.approve(item, n) }, modifier = Modifier.weight(1f).heightIn(min = 64.dp)) {
                    Text(n.toString(), fontSize = 28.sp)
                }
            }
        }
        Button(
            onClick = { vm.deny(item) },
            modifier = Modifier.fillMaxWidth().heightIn(min = 64.dp),
            colors = ButtonDefaults.buttonColors(containerColor = MaterialTheme.colorScheme.error),
        ) { Text(stringResource(R.string.deny_not_me)) }
    }
}

@Composable
private fun Outcome(text: String, vm: InboxViewModel) {
    Text(text, style = MaterialTheme.typography.titleMedium)
    Button(onClick = vm::refresh) { Text(stringResource(R.string.back_to_requests)) }
}
