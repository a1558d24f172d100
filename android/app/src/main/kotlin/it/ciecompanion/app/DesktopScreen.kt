// "Accedi su un computer": viewfinder → who asks (service, level, browser and system,
// place, time) → "Approva" and "Nega, non sono stato io", equally prominent → PIN and tap →
// the code to type on the computer, big, with its countdown.
package it.ciecompanion.app

import android.text.format.DateFormat
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.heightIn
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.Button
import androidx.compose.material3.ButtonDefaults
import androidx.compose.material3.Card
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.text.font.FontFamily
import androidx.compose.ui.text.font.FontWeight
import androidx.compose.ui.unit.dp
import androidx.compose.ui.unit.sp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import it.ciecompanion.android.desktop.DesktopQrState
import it.ciecompanion.android.desktop.ShownCode
import it.ciecompanion.core.CompanionClient
import it.ciecompanion.core.Countdown
import it.ciecompanion.core.LoginContext
import kotlinx.coroutines.delay
import java.util.Date

@Composable
fun DesktopScreen(vm: DesktopViewModel, client: CompanionClient) {
    val model by vm.model.collectAsStateWithLifecycle()
    val state by model.state.collectAsStateWithLifecycle()
    ListenForCard(vm)
    ScrollingScreen(R.string.desktop_title) {
        when (val s = state) {
            is DesktopQrState.Scanning -> {
                Text(stringResource(R.string.desktop_scan))
                s.hint?.let { Text(it, color = MaterialTheme.colorScheme.error) }
                QrCamera(model)
            }
            DesktopQrState.Claiming, DesktopQrState.Approving -> CircularProgressIndicator()
            is DesktopQrState.Review -> Review(s.context, rememberCountdown(client, s.expiresAt), s.deviceAllowed, vm)
            is DesktopQrState.WithCard -> {
                val tap by s.tap.state.collectAsStateWithLifecycle()
                CardTapContent(
                    tap,
                    s.tap::submitPin,
                    s.tap::confirmLastTry,
                    s.tap::cancelLastTry,
                    pinLabel = stringResource(R.string.pin_label_paired),
                ) { /* the model moves to Code */ }
            }
            is DesktopQrState.Code -> CodeShown(s.code, client, vm::restart)
            DesktopQrState.Denied -> {
                Text(stringResource(R.string.desktop_denied), style = MaterialTheme.typography.titleMedium)
                Button(onClick = vm::restart) { Text(stringResource(R.string.scan_another)) }
            }
            is DesktopQrState.Failed -> {
                Text(s.message, color = MaterialTheme.colorScheme.error)
                Button(onClick = vm::restart) { Text(stringResource(R.string.try_again)) }
            }
        }
    }
}

/** The core's countdown to [serverUnix] (server time), ticking while shown until expired. */
@Composable
fun rememberCountdown(client: CompanionClient, serverUnix: ULong): Countdown {
    var left by remember(serverUnix) { mutableStateOf(client.countdown(serverUnix)) }
    LaunchedEffect(serverUnix) {
        while (!left.expired) {
            delay(1_000)
            left = client.countdown(serverUnix)
        }
    }
    return left
}

/** "Decide within N s", or that the time to decide is over. */
@Composable
fun DecideWithin(left: Countdown) {
    if (left.expired) {
        Text(stringResource(R.string.decide_expired), color = MaterialTheme.colorScheme.error)
    } else {
        Text(stringResource(R.string.decide_within, left.secondsLeft.toLong()))
    }
}

@Composable
private fun Review(context: LoginContext, left: Countdown, deviceAllowed: Boolean, vm: DesktopViewModel) {
    LoginContextCard(context)
    DecideWithin(left)
    Text(stringResource(R.string.desktop_only_if_you))
    // Approve and deny side by side, the same size and weight: neither is the default.
    Row(horizontalArrangement = Arrangement.spacedBy(12.dp), modifier = Modifier.fillMaxWidth()) {
        Button(onClick = vm::approveWithCard, modifier = Modifier.weight(1f).heightIn(min = 56.dp)) {
            Text(stringResource(R.string.approve))
        }
        Button(
            onClick = vm::deny,
            modifier = Modifier.weight(1f).heightIn(min = 56.dp),
            colors = ButtonDefaults.buttonColors(containerColor = MaterialTheme.colorScheme.error),
        ) { Text(stringResource(R.string.deny_not_me)) }
    }
    if (vm.canUseDevice && deviceAllowed) {
        TextButton(onClick = vm::approveWithDevice) { Text(stringResource(R.string.approve_with_phone)) }
    } else if (vm.canUseDevice) {
        Text(stringResource(R.string.card_required))
    }
}

/** Who asks: service, level, the computer's browser and system, place and time. */
@Composable
fun LoginContextCard(context: LoginContext) {
    val ctx = LocalContext.current
    val whenMs = context.createdAt.toLong() * 1000
    val time = DateFormat.getTimeFormat(ctx).format(Date(whenMs))
    val day = DateFormat.getMediumDateFormat(ctx).format(Date(whenMs))
    Card(modifier = Modifier.fillMaxWidth()) {
        Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(6.dp)) {
            Text(stringResource(R.string.context_service, context.service), style = MaterialTheme.typography.titleLarge)
            Text(stringResource(R.string.context_level, context.level.toInt()))
            Text(stringResource(R.string.context_device, context.browser, context.os))
            Text(stringResource(R.string.context_place, context.place, context.ip))
            Text(stringResource(R.string.context_time, day, time))
        }
    }
}

@Composable
private fun CodeShown(code: ShownCode, client: CompanionClient, again: () -> Unit) {
    val left = rememberCountdown(client, code.expiresAt)
    Text(stringResource(R.string.code_type_it))
    Text(
        code.code,
        fontSize = 64.sp,
        fontFamily = FontFamily.Monospace,
        fontWeight = FontWeight.Bold,
        letterSpacing = 12.sp,
    )
    if (!left.expired) {
        Text(stringResource(R.string.code_expires_in, left.secondsLeft.toLong()))
    } else {
        Text(stringResource(R.string.code_expired), color = MaterialTheme.colorScheme.error)
    }
    Button(onClick = again) { Text(stringResource(R.string.scan_another)) }
}
