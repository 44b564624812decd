#!/usr/bin/env bash
# Regenerates hotline's default voice prompts and music on hold.
#
#   configs/prompts/generate.sh            # from anywhere; writes next to this script
#
# Output: zh/*.wav (Mandarin), en/*.wav (English), moh.wav — all 8 kHz, 16-bit
# signed, mono PCM WAV. Speech is peak-normalised to -3 dBFS with 50 ms of
# leading and 100 ms of trailing silence; music on hold is ~30 s at about
# -12 dBFS RMS with fades so it loops cleanly.
#
# Requires espeak-ng (>= 1.50) and sox (>= 14.4). Re-runnable: every file is
# rebuilt from scratch and replaced atomically; runs are bit-for-bit repeatable
# on the same espeak-ng and sox versions.
#
# Mandarin: espeak-ng's `cmn` voice in 1.51 (Debian 12 / Ubuntu 24.04) maps
# characters to pinyin and then reads several tone digits as English numbers
# ("nin two hao three"). We therefore keep the Chinese text for reference and
# feed espeak-ng the pinyin with tone numbers through the Mandarin pinyin voice
# `cmn-latn-pinyin` (same Mandarin phonemes and tones, no character lookup).
# The pinyin also pins down readings the character path gets wrong for a
# hotline: 12345 is read digit by digit as "yao1 er4 san1 si4 wu3".
# Override the voices with ZH_VOICE / EN_VOICE, the speed with ZH_SPEED / EN_SPEED.
set -euo pipefail
export LC_ALL=C.UTF-8

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ZH_VOICE="${ZH_VOICE:-cmn-latn-pinyin}"
EN_VOICE="${EN_VOICE:-en}"
ZH_SPEED="${ZH_SPEED:-200}" # words per minute (espeak-ng default 175)
EN_SPEED="${EN_SPEED:-155}"
LEAD_S=0.05  # leading silence kept in every speech prompt
TAIL_S=0.10  # trailing silence
MOH_RMS_DB=-12

for tool in espeak-ng sox soxi; do
	command -v "$tool" >/dev/null || { echo "generate.sh: $tool not found on PATH" >&2; exit 1; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Output format shared by every file. -D: no dither, -R: repeatable.
OUTFMT=(-r 8000 -c 1 -b 16 -e signed-integer)

# speak VOICE SPEED TEXT OUT.wav
speak() {
	local voice="$1" speed="$2" text="$3" out="$4"
	espeak-ng -v "$voice" -s "$speed" -w "$tmp/raw.wav" -- "$text"
	# highpass: drop DC/rumble; silence ... reverse silence ... reverse: trim
	# both ends at -45 dB (after 6 dB of headroom); rate: anti-aliased resample; then tidy padding and
	# peak normalisation to -3 dBFS.
	sox -D -R "$tmp/raw.wav" "${OUTFMT[@]}" "$tmp/out.wav" \
		gain -6 highpass 80 \
		silence 1 0.005 -45d reverse silence 1 0.005 -45d reverse \
		rate -v 8000 \
		pad "$LEAD_S" "$TAIL_S" \
		gain -n -3
	mv "$tmp/out.wav" "$out"
}

# Prompt table: name|Mandarin text (reference)|pinyin spoken|English text.
# Keep README.md in step when editing.
PROMPTS=$(cat <<'EOF'
welcome|您好，欢迎致电12345政务服务便民热线。|nin2 hao3, huan1 ying2 zhi4 dian4 yao1 er4 san1 si4 wu3 zheng4 wu4 fu2 wu4 bian4 min2 re4 xian4.|Welcome to the 1 2 3 4 5 government service hotline.
menu_main|咨询请按1，投诉举报请按2，营商环境专席请按3。|zi1 xun2 qing3 an4 yi1, tou2 su4 ju3 bao4 qing3 an4 er4, ying2 shang1 huan2 jing4 zhuan1 xi2 qing3 an4 san1.|For enquiries press 1. For complaints and reports press 2. For the business environment desk press 3.
invalid|输入有误，请重新输入。|shu1 ru4 you3 wu4, qing3 chong2 xin1 shu1 ru4.|Sorry, that is not a valid choice.
timeout|您没有输入，请重新选择。|nin2 mei2 you3 shu1 ru4, qing3 chong2 xin1 xuan3 ze2.|We did not receive your choice.
please_hold|坐席正忙，请稍候。|zuo4 xi2 zheng4 mang2, qing3 shao1 hou4.|All our agents are busy. Please hold.
no_agents|当前没有坐席在线，请稍后再拨。|dang1 qian2 mei2 you3 zuo4 xi2 zai4 xian4, qing3 shao1 hou4 zai4 bo1.|No agents are available at the moment. Please call again later.
goodbye|感谢您的来电，再见。|gan3 xie4 nin2 de5 lai2 dian4, zai4 jian4.|Thank you for calling. Goodbye.
closed|现在是非工作时间，请在工作时间再拨。|xian4 zai4 shi4 fei1 gong1 zuo4 shi2 jian1, qing3 zai4 gong1 zuo4 shi2 jian1 zai4 bo1.|We are closed now. Please call again during working hours.
enter_case|请输入您的工单号，以井号键结束。|qing3 shu1 ru4 nin2 de5 gong1 dan1 hao4, yi3 jing3 hao4 jian4 jie2 shu4.|Please enter your case number followed by the hash key.
position_pre|您前面还有|nin2 qian2 mian4 hai2 you3|You are number
position_post|位来电者在等候。|wei4 lai2 dian4 zhe3 zai4 deng3 hou4.|in the queue.
wait_pre|预计等待时间|yu4 ji4 deng3 dai4 shi2 jian1|Your estimated wait is
minutes|分钟|fen1 zhong1|minutes
less_than_one_minute|不到一分钟|bu2 dao4 yi4 fen1 zhong1|less than one minute
digit_0|零|ling2|zero
digit_1|一|yi1|one
digit_2|二|er4|two
digit_3|三|san1|three
digit_4|四|si4|four
digit_5|五|wu3|five
digit_6|六|liu4|six
digit_7|七|qi1|seven
digit_8|八|ba1|eight
digit_9|九|jiu3|nine
ten|十|shi2|ten
hundred|百|bai3|hundred
logged_in|已签入|yi3 qian1 ru4|Logged in
logged_out|已签出|yi3 qian1 chu1|Logged out
paused|已暂停|yi3 zan4 ting2|Paused
ready|已就绪|yi3 jiu4 xu4|Ready
survey_intro|您好，这里是12345热线回访。请对我们的服务进行评价：满意请按1，基本满意请按2，不满意请按3。|nin2 hao3, zhe4 li3 shi4 yao1 er4 san1 si4 wu3 re4 xian4 hui2 fang3. qing3 dui4 wo3 men5 de5 fu2 wu4 jin4 xing2 ping2 jia4. man3 yi4 qing3 an4 yi1, ji1 ben3 man3 yi4 qing3 an4 er4, bu4 man3 yi4 qing3 an4 san1.|This is the 1 2 3 4 5 hotline follow-up. Please rate our service: satisfied press 1, fairly satisfied press 2, dissatisfied press 3.
survey_thanks|感谢您的评价，再见。|gan3 xie4 nin2 de5 ping2 jia4, zai4 jian4.|Thank you for your feedback. Goodbye.
rate_call|请您对刚才的服务进行评价：满意请按1，基本满意请按2，不满意请按3。|qing3 nin2 dui4 gang1 cai2 de5 fu2 wu4 jin4 xing2 ping2 jia4. man3 yi4 qing3 an4 yi1, ji1 ben3 man3 yi4 qing3 an4 er4, bu4 man3 yi4 qing3 an4 san1.|Please rate the service you just received: satisfied press 1, fairly satisfied press 2, dissatisfied press 3.
survey_greeting|您好，这里是12345热线回访。|nin2 hao3, zhe4 li3 shi4 yao1 er4 san1 si4 wu3 re4 xian4 hui2 fang3.|Hello, this is a follow-up call from the 1 2 3 4 5 hotline.
survey_question|您对本次诉求的办理结果满意吗？满意请按1，基本满意请按2，不满意请按3，转人工请按0。|nin2 dui4 ben3 ci4 su4 qiu2 de5 ban4 li3 jie2 guo3 man3 yi4 ma5? man3 yi4 qing3 an4 yi1, ji1 ben3 man3 yi4 qing3 an4 er4, bu4 man3 yi4 qing3 an4 san1, zhuan3 ren2 gong1 qing3 an4 ling2.|Are you satisfied with how your request was handled? Press 1 for satisfied, 2 for basically satisfied, 3 for dissatisfied, or 0 for an agent.
callback_offer|如需回电，请按1，我们将保留您的排队位置并给您回电。|ru2 xu1 hui2 dian4, qing3 an4 yi1, wo3 men5 jiang1 bao3 liu2 nin2 de5 pai2 dui4 wei4 zhi4 bing4 gei3 nin2 hui2 dian4.|To be called back instead of waiting, press 1; you keep your place in the queue.
callback_confirm_pre|我们将回电至|wo3 men5 jiang1 hui2 dian4 zhi4|We will call you back at
callback_confirm_post|确认请按1，重新输入号码请按2。|que4 ren4 qing3 an4 yi1, chong2 xin1 shu1 ru4 hao4 ma3 qing3 an4 er4.|Press 1 to confirm, or 2 to enter another number.
callback_enter|请输入回电号码，以井号键结束。|qing3 shu1 ru4 hui2 dian4 hao4 ma3, yi3 jing3 hao4 jian4 jie2 shu4.|Please enter the number to call back, followed by the hash key.
callback_booked|已为您登记回电，请挂机等候，再见。|yi3 wei4 nin2 deng1 ji4 hui2 dian4, qing3 gua4 ji1 deng3 hou4, zai4 jian4.|Your callback is booked. Please hang up; we will call you. Goodbye.
task_whisper|回访任务，工单号|hui2 fang3 ren4 wu4, gong1 dan1 hao4|Callback task, case number
recording_notice|您的通话可能被录音。|nin2 de5 tong1 hua4 ke3 neng2 bei4 lu4 yin1.|Your call may be recorded.
voicemail_offer|留言请按1。|liu2 yan2 qing3 an4 yi1.|To leave a message, press 1.
voicemail_greeting|请在提示音后留言，按井号键结束，我们将尽快给您回电。|qing3 zai4 ti2 shi4 yin1 hou4 liu2 yan2, an4 jing3 hao4 jian4 jie2 shu4, wo3 men5 jiang1 jin3 kuai4 gei3 nin2 hui2 dian4.|Please leave a message after the tone, and press the hash key when you are done. We will call you back.
voicemail_saved|您的留言已收到，我们将尽快给您回电，再见。|nin2 de5 liu2 yan2 yi3 shou1 dao4, wo3 men5 jiang1 jin3 kuai4 gei3 nin2 hui2 dian4, zai4 jian4.|Your message has been received. We will call you back. Goodbye.
case_status_pre|您的工单|nin2 de5 gong1 dan1|Your case
status_received|已受理，正在分派。|yi3 shou4 li3, zheng4 zai4 fen1 pai4.|has been received and is being assigned.
status_processing|正在办理中。|zheng4 zai4 ban4 li3 zhong1.|is being processed.
status_done|已办结。|yi3 ban4 jie2.|has been completed.
case_not_found|未查询到该工单，请核对工单号。|wei4 cha2 xun2 dao4 gai1 gong1 dan1, qing3 he2 dui4 gong1 dan1 hao4.|We could not find that case. Please check the case number.
lookup_failed|暂时无法查询，正在为您转接人工服务。|zan4 shi2 wu2 fa3 cha2 xun2, zheng4 zai4 wei4 nin2 zhuan3 jie1 ren2 gong1 fu2 wu4.|Sorry, we cannot look up your case right now. We are putting you through to an agent.
date_pre|预计办结日期|yu4 ji4 ban4 jie2 ri4 qi1|Expected completion date:
amount_pre|涉及金额|she4 ji2 jin1 e2|The amount is
yuan|元|yuan2|yuan
thousand|千|qian1|thousand
ten_thousand|万|wan4|ten thousand
year|年|nian2|year
month_1|一月|yi1 yue4|January
month_2|二月|er4 yue4|February
month_3|三月|san1 yue4|March
month_4|四月|si4 yue4|April
month_5|五月|wu3 yue4|May
month_6|六月|liu4 yue4|June
month_7|七月|qi1 yue4|July
month_8|八月|ba1 yue4|August
month_9|九月|jiu3 yue4|September
month_10|十月|shi2 yue4|October
month_11|十一月|shi2 yi1 yue4|November
month_12|十二月|shi2 er4 yue4|December
day_1|一日|yi1 ri4|first
day_2|二日|er4 ri4|second
day_3|三日|san1 ri4|third
day_4|四日|si4 ri4|fourth
day_5|五日|wu3 ri4|fifth
day_6|六日|liu4 ri4|sixth
day_7|七日|qi1 ri4|seventh
day_8|八日|ba1 ri4|eighth
day_9|九日|jiu3 ri4|ninth
day_10|十日|shi2 ri4|tenth
day_11|十一日|shi2 yi1 ri4|eleventh
day_12|十二日|shi2 er4 ri4|twelfth
day_13|十三日|shi2 san1 ri4|thirteenth
day_14|十四日|shi2 si4 ri4|fourteenth
day_15|十五日|shi2 wu3 ri4|fifteenth
day_16|十六日|shi2 liu4 ri4|sixteenth
day_17|十七日|shi2 qi1 ri4|seventeenth
day_18|十八日|shi2 ba1 ri4|eighteenth
day_19|十九日|shi2 jiu3 ri4|nineteenth
day_20|二十日|er4 shi2 ri4|twentieth
day_21|二十一日|er4 shi2 yi1 ri4|twenty-first
day_22|二十二日|er4 shi2 er4 ri4|twenty-second
day_23|二十三日|er4 shi2 san1 ri4|twenty-third
day_24|二十四日|er4 shi2 si4 ri4|twenty-fourth
day_25|二十五日|er4 shi2 wu3 ri4|twenty-fifth
day_26|二十六日|er4 shi2 liu4 ri4|twenty-sixth
day_27|二十七日|er4 shi2 qi1 ri4|twenty-seventh
day_28|二十八日|er4 shi2 ba1 ri4|twenty-eighth
day_29|二十九日|er4 shi2 jiu3 ri4|twenty-ninth
day_30|三十日|san1 shi2 ri4|thirtieth
day_31|三十一日|san1 shi2 yi1 ri4|thirty-first
EOF
)

mkdir -p "$here/zh" "$here/en"
n=0
while IFS='|' read -r name zh pinyin en; do
	[[ -z "$name" ]] && continue
	speak "$ZH_VOICE" "$ZH_SPEED" "$pinyin" "$here/zh/$name.wav"
	speak "$EN_VOICE" "$EN_SPEED" "$en" "$here/en/$name.wav"
	n=$((n + 1))
done <<<"$PROMPTS"

# Music on hold: a slow arpeggio of plucked notes over a soft sine pad,
# chord progression C – Am – F – G, 7.5 s each (30 s), tempo 120 (0.5 s notes).
# Notes are in semitones relative to A4 = 440 Hz (sox's %N notation).
moh() {
	local chords=(
		"-21 -17 -14|-9 -5 -2 3 -2 -5 -9 -5 -2 3 7 3 -2 -5 -2"     # C:  C3 E3 G3 | C4 E4 G4 C5 ...
		"-24 -21 -17|-12 -9 -5 0 -5 -9 -12 -9 -5 0 3 0 -5 -9 -5"   # Am: A2 C3 E3 | A3 C4 E4 A4 ...
		"-28 -24 -21|-16 -12 -9 -4 -9 -12 -16 -12 -9 -4 0 -4 -9 -12 -9" # F: F2 A2 C3 | F3 A3 C4 F4 ...
		"-26 -22 -19|-14 -10 -7 -2 -7 -10 -14 -10 -7 -2 2 -2 -7 -10 -7" # G: G2 B2 D3 | G3 B3 D4 G4 ...
	)
	local i=0 j pad notes note
	local parts=()
	for chord in "${chords[@]}"; do
		pad="${chord%%|*}"
		notes="${chord#*|}"
		# Pad: three sines mixed to mono, slow swell in and out, with a gentle tremolo.
		local p=()
		for note in $pad; do p+=(sine "%$note"); done
		sox -D -R -r 44100 -c 3 -n -c 1 "$tmp/pad$i.wav" synth 7.5 "${p[@]}" \
			remix - tremolo 0.3 20 fade q 1.5 7.5 1.5 vol 0.35
		# Arpeggio: 15 plucked notes of 0.5 s, each decaying.
		local a=()
		j=0
		for note in $notes; do
			sox -D -R -r 44100 -c 1 -n "$tmp/n$i-$j.wav" synth 0.5 pluck "%$note" \
				fade l 0.005 0.5 0.45 vol 0.22
			a+=("$tmp/n$i-$j.wav")
			j=$((j + 1))
		done
		sox -D -R "${a[@]}" "$tmp/arp$i.wav"
		sox -D -R -m "$tmp/pad$i.wav" "$tmp/arp$i.wav" "$tmp/seg$i.wav"
		parts+=("$tmp/seg$i.wav")
		i=$((i + 1))
	done
	# Built at 44.1 kHz (sox's pluck needs it), filtered and resampled to 8 kHz.
	sox -D -R "${parts[@]}" -r 8000 "$tmp/moh_raw.wav" gain -6 lowpass 1600 fade t 1 30 2 rate -v 8000 \
		compand 0.002,0.2 6:-60,-60,-30,-26,-12,-17,0,-14 0 -90 0.002
	# Normalise RMS to MOH_RMS_DB (two passes: measure, then apply gain).
	local rms gain
	rms=$(sox "$tmp/moh_raw.wav" -n stats 2>&1 | awk '/^RMS lev dB/ {print $4}')
	gain=$(awk -v r="$rms" -v t="$MOH_RMS_DB" 'BEGIN {printf "%.2f", t - r}')
	sox -D -R "$tmp/moh_raw.wav" "${OUTFMT[@]}" "$tmp/moh.wav" gain "$gain"
	mv "$tmp/moh.wav" "$here/moh.wav"
}
moh

# The voicemail beep (no language): 400 ms of 1000 Hz at -6 dBFS, 50 ms lead, 100 ms tail.
sox -D -R -n "${OUTFMT[@]}" "$tmp/beep.wav" synth 0.4 sine 1000 fade 0.01 0.4 0.01 gain -6 pad "$LEAD_S" "$TAIL_S"
mv "$tmp/beep.wav" "$here/beep.wav"

echo "generate.sh: wrote $n prompts each to $here/zh and $here/en, $here/moh.wav and $here/beep.wav"
