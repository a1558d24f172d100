// The approvals inbox ("Richieste di accesso"): the logins waiting for this phone's
// approval, number matching, approve or deny. Plain Kotlin; the core signs every request
// with the device key through the shell's DeviceSigner, checks every answer and says what a
// failed decision leads to (approvalStep).
package it.ciecompanion.android.approvals

import it.ciecompanion.android.card.CardTap
import it.ciecompanion.core.ApprovalStep
import it.ciecompanion.core.CompanionClient
import it.ciecompanion.core.Decision
import it.ciecompanion.core.DeviceEnrollmentSession
import it.ciecompanion.core.DeviceSigner
import it.ciecompanion.core.EnrolledDevice
import it.ciecompanion.core.FlowException
import it.ciecompanion.core.Language
import it.ciecompanion.core.PendingApprovalInfo
import it.ciecompanion.core.approvalStep
import it.ciecompanion.core.flowErrorMessage
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock

/** What the inbox shows. */
sealed interface InboxState {
    data object Loading : InboxState

    /** The pending requests; each shows its context and three numbers to pick from. */
    data class Items(val pending: List<PendingApprovalInfo>) : InboxState

    /** Approved: the computer logs in. */
    data object Approved : InboxState

    /** Denied. */
    data object Denied : InboxState

    /** The number picked was not the computer's: the request is cancelled (one guess only). */
    data class WrongNumber(val message: String) : InboxState

    /** Stopped; [message] says what to do next. */
    data class Failed(val message: String) : InboxState
}

/** The inbox of the device [deviceId] enrolled at [origin]; [signer] holds its key. */
class ApprovalsModel(
    private val client: CompanionClient,
    private val origin: String,
    private val deviceId: String,
    private val signer: DeviceSigner,
    private val language: Language,
) {
    constructor(client: CompanionClient, device: EnrolledDevice, signer: DeviceSigner, language: Language) :
        this(client, device.origin, device.deviceId, signer, language)

    private val _state = MutableStateFlow<InboxState>(InboxState.Loading)
    val state: StateFlow<InboxState> = _state.asStateFlow()
    private val busy = Mutex()

    /** Fetch the pending requests (on open, on a push, on pull-to-refresh). */
    suspend fun refresh() = busy.withLock {
        _state.value = InboxState.Loading
        _state.value = try {
            InboxState.Items(client.pendingApprovals(origin, deviceId, signer))
        } catch (e: FlowException) {
            InboxState.Failed(flowErrorMessage(e, language))
        }
    }

    /** "Autorizza" with the number the user picked among [PendingApprovalInfo.choices]. */
    suspend fun approve(item: PendingApprovalInfo, number: UByte) = decide(item, Decision.APPROVE, number)

    /** "Nega / non sono stato io". */
    suspend fun deny(item: PendingApprovalInfo) = decide(item, Decision.DENY, null)

    private suspend fun decide(item: PendingApprovalInfo, decision: Decision, number: UByte?) = busy.withLock {
        _state.value = try {
            client.decideApproval(item, deviceId, signer, decision, number)
            if (decision == Decision.APPROVE) InboxState.Approved else InboxState.Denied
        } catch (e: FlowException) {
            val message = flowErrorMessage(e, language)
            when (approvalStep(e)) {
                ApprovalStep.WRONG_NUMBER -> InboxState.WrongNumber(message)
                ApprovalStep.STOP -> InboxState.Failed(message)
            }
        }
    }
}

/** Enrolling this phone: the card proves the holder (PIN + tap), the key stays in the keystore. */
fun deviceEnrollment(session: DeviceEnrollmentSession, language: Language): CardTap<EnrolledDevice> = CardTap(
    language = language,
    tap = { transport, pin, progress -> session.tap(transport, pin, progress) },
    confirm = session::confirmLastTry,
)
