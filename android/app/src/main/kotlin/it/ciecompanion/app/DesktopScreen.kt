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
import androidx.compose.runtime.mutableLongStateOf
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
import it.ciecompanion.android.clock.ServerClock
import it.ciecompanion.android.desktop.DesktopQrState
import it.ciecompanion.android.desktop.ShownCode
import it.ciecompanion.core.LoginContext
import kotlinx.coroutines.delay
import java.util.Date

@Composable
fun DesktopScreen(vm: DesktopViewModel, clock: ServerClock) {
    val model by vm.model.collectAsStateWithLifecycle()
    val state by model.state.collectAsStateWithLifecycle()
    ListenForCard(vm)
    ScrollingScreen(R.string.desktop_title) {
        when (val s = state) {
            is DesktopQrState.Scanning -> {
                Text(stringResource(R.string.desktop_scan))
                s.hintIt?.let { Text(it, color = MaterialTheme.colorScheme.error) }
                QrCamera(model)
            }
            DesktopQrState.Claiming, DesktopQrState.Approving -> CircularProgressIndicator()
            is DesktopQrState.Review -> Review(s.context, Countdown(clock, s.expiresAt), vm)
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
            is DesktopQrState.Code -> CodeShown(s.code, clock, vm::restart)
            DesktopQrState.Denied -> {
                Text(stringResource(R.string.desktop_denied), style = MaterialTheme.typography.titleMedium)
                Button(onClick = vm::restart) { Text(stringResource(R.string.scan_another)) }
            }
            is DesktopQrState.Failed -> {
                Text(s.messageIt, color = MaterialTheme.colorScheme.error)
                Button(onClick = vm::restart) { Text(stringResource(R.string.try_again)) }
            }
        }
    }
}

/** Seconds left until [serverUnix], ticking while shown. */
@Composable
fun Countdown(clock: ServerClock, serverUnix: ULong): Long {
    var left by remember(serverUnix) { mutableLongStateOf(clock.secondsUntil(serverUnix)) }
    LaunchedEffect(serverUnix) {
        while (left > 0) {
            delay(1_000)
            left = clock.secondsUntil(serverUnix)
        }
    }
    return left
}

@Composable
private fun Review(context: LoginContext, secondsLeft: Long, vm: DesktopViewModel) {
    LoginContextCard(context)
    Text(stringResource(R.string.decide_within, secondsLeft))
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
    if (vm.canUseDevice) {
        TextButton(onClick = vm::approveWithDevice) { Text(stringResource(R.string.approve_with_phone)) }
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
private fun CodeShown(code: ShownCode, clock: ServerClock, again: () -> Unit) {
    val left = Countdown(clock, code.expiresAt)
    Text(stringResource(R.string.code_type_it))
    Text(
        code.code,
        fontSize = 64.sp,
        fontFamily = FontFamily.Monospace,
        fontWeight = FontWeight.Bold,
        letterSpacing = 12.sp,
    )
    if (left > 0) {
        Text(stringResource(R.string.code_expires_in, left))
    } else {
        Text(stringResource(R.string.code_expired), color = MaterialTheme.colorScheme.error)
    }
    Button(onClick = again) { Text(stringResource(R.string.scan_another)) }
}
